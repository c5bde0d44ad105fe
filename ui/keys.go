package ui

import "charm.land/bubbles/v2/key"

// Timestep steps: a fine step for looking closely and a coarse one for crossing the
// schedule (about 100 steps is one noise "regime" in the paper's Fig. 5).
const (
	fineStep   = 10
	coarseStep = 100
)

// KeyMap is every key the explorer answers to. The help view is built from it, so the
// bindings and their help can never disagree.
type KeyMap struct {
	TimeBack, TimeFwd         key.Binding
	TimeBackFar, TimeFwdFar   key.Binding
	LayerUp, LayerDown        key.Binding
	Up, Down, Left, Right     key.Binding
	Metric, Swap, Overlay     key.Binding
	Rescaled                  key.Binding // bars and sweep in rescaled scores; only with a baseline
	Sweep, Export, Open, Help key.Binding
	Prompt, CFG               key.Binding // the text prompt of diffusion models
	TimeFirst, TimeLast       key.Binding
	TypeT                     key.Binding // t, then digits and enter
	Back                      key.Binding // esc: closes the expanded help
	// Clip keys, enabled only on a clip (video --explore), where ← and → take them over.
	FramePrev, FrameNext key.Binding
	Quit, Interrupt      key.Binding
	// Prompt keys, active only while the path prompt is open.
	Accept, Cancel key.Binding
}

// DefaultKeyMap returns the explorer's bindings.
func DefaultKeyMap() KeyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	k := KeyMap{
		TimeBack:    b([]string{","}, ",", "t −10"),
		TimeFwd:     b([]string{"."}, ".", "t +10"),
		TimeBackFar: b([]string{"<", "shift+left"}, "<", "t −100"),
		TimeFwdFar:  b([]string{">", "shift+right"}, ">", "t +100"),
		LayerUp:     b([]string{"K", "pgup", "shift+up"}, "K/pgup", "layer up"),
		LayerDown:   b([]string{"J", "pgdown", "shift+down"}, "J/pgdn", "layer down"),
		Up:          b([]string{"up", "k"}, "↑/k", "token up"),
		Down:        b([]string{"down", "j"}, "↓/j", "token down"),
		Left:        b([]string{"left", "h"}, "←/h", "token left"),
		Right:       b([]string{"right", "l"}, "→/l", "token right"),
		Metric:      b([]string{"m"}, "m", "metric"),
		Rescaled:    b([]string{"r"}, "r", "rescaled/raw bars"),
		Swap:        b([]string{"s"}, "s", "swap A/B"),
		Overlay:     b([]string{"o"}, "o", "overlay"),
		Sweep:       b([]string{"w"}, "w", "sweep"),
		Export:      b([]string{"e"}, "e", "export"),
		Open:        b([]string{"p"}, "p", "open pair"),
		Prompt:      b([]string{"P"}, "P", "prompt"),
		CFG:         b([]string{"c"}, "c", "CFG"),
		FramePrev:   b([]string{"left", "["}, "←/[", "frame back"),
		FrameNext:   b([]string{"right", "]"}, "→/]", "frame forward"),
		TimeFirst:   b([]string{"home"}, "home", "t = 0"),
		TimeLast:    b([]string{"end"}, "end", "t = 999"),
		TypeT:       b([]string{"t"}, "t", "type a t"),
		Back:        b([]string{"esc"}, "esc", "back"),
		Help:        b([]string{"?"}, "?", "help"),
		Quit:        b([]string{"q"}, "q", "quit"),
		Interrupt:   b([]string{"ctrl+c"}, "ctrl+c", "quit, from anywhere"),
		Accept:      b([]string{"enter"}, "enter", "accept"),
		Cancel:      b([]string{"esc"}, "esc", "cancel"),
	}
	k.FramePrev.SetEnabled(false)
	k.FrameNext.SetEnabled(false)
	return k
}

// ShortHelp is the one-line help under the explorer: the most used keys first, so what
// an 80-column line cuts is the least needed.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Quit, k.FramePrev, k.FrameNext, k.TimeBack, k.TimeFwd, k.LayerUp, k.LayerDown, k.Sweep, k.Overlay, k.Metric, k.TypeT}
}

// FullHelp is the expanded help, one column per group.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.FramePrev, k.FrameNext, k.TimeBack, k.TimeFwd, k.TimeBackFar, k.TimeFwdFar, k.TimeFirst, k.TimeLast, k.TypeT},
		{k.LayerUp, k.LayerDown, k.Up, k.Down, k.Left, k.Right},
		{k.Metric, k.Rescaled, k.Swap, k.Overlay, k.Sweep, k.Prompt, k.CFG},
		{k.Export, k.Open, k.Help, k.Back, k.Quit, k.Interrupt},
	}
}

// promptKeyMap is the help while the one-line prompt is open.
type promptKeyMap struct{ Accept, Cancel, Interrupt key.Binding }

func (k promptKeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Accept, k.Cancel, k.Interrupt}
}
func (k promptKeyMap) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }
