package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// pathPrompt is a one-line text input for the "open pair" prompt, in the bubbles shape.
//
// It stands in for bubbles/v2/textinput, which needs github.com/atotto/clipboard, a module
// this repository's go.mod does not list yet; swap it in once it does.
// promptKeys are the prompt's editing keys.
type promptKeys struct {
	DeleteBefore, DeleteAfter, Left, Right, Home, End, ClearBefore, DeleteWord key.Binding
}

func defaultPromptKeys() promptKeys {
	k := func(keys ...string) key.Binding { return key.NewBinding(key.WithKeys(keys...)) }
	return promptKeys{
		DeleteBefore: k("backspace", "ctrl+h"),
		DeleteAfter:  k("delete", "ctrl+d"),
		Left:         k("left", "ctrl+b"),
		Right:        k("right", "ctrl+f"),
		Home:         k("home", "ctrl+a"),
		End:          k("end", "ctrl+e"),
		ClearBefore:  k("ctrl+u"),
		DeleteWord:   k("ctrl+w"),
	}
}

type pathPrompt struct {
	Keys        promptKeys
	Prompt      string
	Placeholder string
	PromptStyle lipgloss.Style
	TextStyle   lipgloss.Style
	DimStyle    lipgloss.Style
	CursorStyle lipgloss.Style

	value   []rune
	pos     int
	width   int
	focused bool
}

func newPathPrompt() pathPrompt { return pathPrompt{Keys: defaultPromptKeys()} }

func (p *pathPrompt) SetWidth(w int)    { p.width = w }
func (p *pathPrompt) Focus()            { p.focused = true }
func (p *pathPrompt) Blur()             { p.focused = false }
func (p pathPrompt) Focused() bool      { return p.focused }
func (p pathPrompt) Value() string      { return string(p.value) }
func (p *pathPrompt) SetValue(s string) { p.value = []rune(s); p.pos = len(p.value) }
func (p *pathPrompt) insert(s string) {
	r := []rune(s)
	p.value = append(p.value[:p.pos], append(r, p.value[p.pos:]...)...)
	p.pos += len(r)
}
func (p *pathPrompt) deleteBefore(n int) {
	n = min(n, p.pos)
	p.value = append(p.value[:p.pos-n], p.value[p.pos:]...)
	p.pos -= n
}

// Update edits the value: printable keys, paste, backspace, delete, arrows, home/end,
// ctrl+u (clear before the cursor) and ctrl+w (delete a word).
func (p pathPrompt) Update(msg tea.Msg) (pathPrompt, tea.Cmd) {
	if !p.focused {
		return p, nil
	}
	switch msg := msg.(type) {
	case tea.PasteMsg:
		p.insert(strings.ReplaceAll(msg.Content, "\n", " "))
	case tea.KeyPressMsg:
		k := p.Keys
		switch {
		case key.Matches(msg, k.DeleteBefore):
			p.deleteBefore(1)
		case key.Matches(msg, k.DeleteAfter):
			if p.pos < len(p.value) {
				p.value = append(p.value[:p.pos], p.value[p.pos+1:]...)
			}
		case key.Matches(msg, k.Left):
			p.pos = max(p.pos-1, 0)
		case key.Matches(msg, k.Right):
			p.pos = min(p.pos+1, len(p.value))
		case key.Matches(msg, k.Home):
			p.pos = 0
		case key.Matches(msg, k.End):
			p.pos = len(p.value)
		case key.Matches(msg, k.ClearBefore):
			p.deleteBefore(p.pos)
		case key.Matches(msg, k.DeleteWord):
			i := p.pos
			for i > 0 && p.value[i-1] == ' ' {
				i--
			}
			for i > 0 && p.value[i-1] != ' ' {
				i--
			}
			p.deleteBefore(p.pos - i)
		default:
			if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
				p.insert(msg.Text)
			}
		}
	}
	return p, nil
}

// View draws the prompt, scrolled so the cursor stays visible.
func (p pathPrompt) View() string {
	room := max(p.width-ansi.StringWidth(p.Prompt)-1, 4)
	var b strings.Builder
	b.WriteString(p.PromptStyle.Render(p.Prompt))
	if len(p.value) == 0 && p.Placeholder != "" {
		b.WriteString(p.CursorStyle.Render(" "))
		b.WriteString(p.DimStyle.Render(ansi.Truncate(p.Placeholder, room-1, "…")))
		return b.String()
	}
	start := max(p.pos-room+1, 0)
	end := min(start+room, len(p.value))
	b.WriteString(p.TextStyle.Render(string(p.value[start:p.pos])))
	cur := " "
	if p.pos < len(p.value) {
		cur = string(p.value[p.pos])
	}
	b.WriteString(p.CursorStyle.Render(cur))
	if p.pos < end {
		b.WriteString(p.TextStyle.Render(string(p.value[min(p.pos+1, end):end])))
	}
	return b.String()
}

// promptKind is what the prompt bar is open for.
type promptKind int

const (
	promptPair promptKind = iota // two image paths
	promptText                   // the diffusion model's text prompt
	promptT                      // a timestep
)

// promptDoneMsg says the prompt bar was accepted with value, for kind.
type promptDoneMsg struct {
	kind  promptKind
	value string
}

// promptBar is the one-line prompt at the bottom (open a pair, a text prompt, a typed t):
// it owns its input and its keys, and answers Enter with a promptDoneMsg; Esc closes it.
type promptBar struct {
	keys  promptKeyMap
	input pathPrompt
	kind  promptKind
	open  bool
	width int
}

func newPromptBar(k KeyMap, st Styles) promptBar {
	p := promptBar{keys: promptKeyMap{Accept: k.Accept, Cancel: k.Cancel, Interrupt: k.Interrupt}, input: newPathPrompt()}
	p.SetStyles(st)
	return p
}

// Active reports whether the bar is open.
func (p promptBar) Active() bool { return p.open }

func (p promptBar) ShortHelp() []key.Binding  { return p.keys.ShortHelp() }
func (p promptBar) FullHelp() [][]key.Binding { return p.keys.FullHelp() }

// SetStyles styles the input.
func (p *promptBar) SetStyles(st Styles) {
	p.input.PromptStyle, p.input.TextStyle, p.input.DimStyle, p.input.CursorStyle = st.Prompt, st.Value, st.Dim, st.Cursorline
}

func (p *promptBar) SetSize(w, _ int) {
	p.width = w
	p.input.SetWidth(max(w-len(p.input.Prompt)-2, 10))
}

// Open opens the bar for kind, holding value.
func (p *promptBar) Open(kind promptKind, value string) {
	p.kind = kind
	switch kind {
	case promptText:
		p.input.Prompt = "prompt › "
		p.input.Placeholder = "text to condition on (empty: unconditional)"
	case promptT:
		p.input.Prompt = "t › "
		p.input.Placeholder = fmt.Sprintf("timestep 0–%d, then enter", maxT)
	default:
		p.input.Prompt = "open A B › "
		p.input.Placeholder = "path/to/a.png path/to/b.png"
	}
	p.SetSize(p.width, 1)
	p.open = true
	p.input.SetValue(value)
	p.input.Focus()
}

func (p *promptBar) close() {
	p.open = false
	p.input.Blur()
}

// Update edits the input; Enter closes the bar with a promptDoneMsg, Esc without.
func (p promptBar) Update(msg tea.Msg) (promptBar, tea.Cmd) {
	if !p.open {
		return p, nil
	}
	if km, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(km, p.keys.Cancel):
			p.close()
			return p, nil
		case key.Matches(km, p.keys.Accept):
			p.close()
			done := promptDoneMsg{kind: p.kind, value: p.input.Value()}
			return p, func() tea.Msg { return done }
		}
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	return p, cmd
}

func (p promptBar) View() string { return p.input.View() }
