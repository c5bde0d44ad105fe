package ui

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Styles holds every style the explorer draws with.
//
// Text uses the terminal's own foreground, and the accents are mid-tones that read on
// dark and light backgrounds alike: many terminals (xterm among them) do not answer the
// background-colour query, so the palette must not depend on the answer. isDark only
// tunes the shades.
type Styles struct {
	Title, TitleDim lipgloss.Style
	Caption         lipgloss.Style
	Label, Value    lipgloss.Style
	Big             lipgloss.Style
	Dim             lipgloss.Style
	Selected        lipgloss.Style
	Bar, BarMuted   lipgloss.Style
	Meaningless     lipgloss.Style
	Error           lipgloss.Style
	Warn            lipgloss.Style
	OK              lipgloss.Style
	Panel           lipgloss.Style
	PanelTitle      lipgloss.Style
	Slider, Marker  lipgloss.Style
	Spinner         lipgloss.Style
	Prompt          lipgloss.Style
	Notice          lipgloss.Style
	Cursorline      lipgloss.Style // the prompt's cursor cell

	// Cursor is the token cursor colour drawn on images.
	Cursor color.Color
}

// NewStyles returns the styles for a dark (isDark) or light terminal background.
func NewStyles(isDark bool) Styles {
	ld := lipgloss.LightDark(isDark)
	accent := ld(lipgloss.Color("#6A4BD8"), lipgloss.Color("#9D85FF"))
	dim := lipgloss.Color("#808080")
	red := ld(lipgloss.Color("#C62828"), lipgloss.Color("#FF6B6B"))
	green := ld(lipgloss.Color("#2E7D32"), lipgloss.Color("#7BD88F"))
	amber := ld(lipgloss.Color("#B26A00"), lipgloss.Color("#E5C07B"))
	border := lipgloss.Color("#8A8A8A")
	muted := ld(lipgloss.Color("#D0D0D0"), lipgloss.Color("#3A3A3A"))
	white := lipgloss.Color("#FFFFFF")
	return Styles{
		Title:       lipgloss.NewStyle().Bold(true).Foreground(white).Background(accent),
		TitleDim:    lipgloss.NewStyle(),
		Caption:     lipgloss.NewStyle().Foreground(dim),
		Label:       lipgloss.NewStyle().Foreground(dim),
		Value:       lipgloss.NewStyle(),
		Big:         lipgloss.NewStyle().Bold(true).Foreground(accent),
		Dim:         lipgloss.NewStyle().Foreground(dim),
		Selected:    lipgloss.NewStyle().Bold(true).Foreground(accent),
		Bar:         lipgloss.NewStyle().Foreground(accent),
		BarMuted:    lipgloss.NewStyle().Foreground(muted),
		Meaningless: lipgloss.NewStyle().Foreground(dim).Italic(true),
		Error:       lipgloss.NewStyle().Foreground(red).Bold(true),
		Warn:        lipgloss.NewStyle().Foreground(amber),
		OK:          lipgloss.NewStyle().Foreground(green),
		Panel:       lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(border).Padding(0, 1),
		PanelTitle:  lipgloss.NewStyle().Bold(true),
		Slider:      lipgloss.NewStyle().Foreground(border),
		Marker:      lipgloss.NewStyle().Bold(true).Foreground(red),
		Spinner:     lipgloss.NewStyle().Foreground(accent),
		Prompt:      lipgloss.NewStyle().Bold(true).Foreground(accent),
		Notice:      lipgloss.NewStyle().Foreground(amber).Italic(true),
		Cursorline:  lipgloss.NewStyle().Reverse(true),
		Cursor:      color.RGBA{255, 40, 100, 255},
	}
}

// Swatch is a cell filled with colour c, for the sweep's heatmap of scores.
func (s Styles) Swatch(c color.Color) lipgloss.Style {
	return lipgloss.NewStyle().Background(c)
}

// SweepCell is a sweep cell of colour bg: its number in black on the bright end of the
// colormap and in white on the dark end; the cursor's cell bold and underlined.
func (s Styles) SweepCell(bg color.Color, bright, cursor bool) lipgloss.Style {
	ink := color.Color(color.White)
	if bright {
		ink = color.Black
	}
	st := lipgloss.NewStyle().Background(bg).Foreground(ink)
	if cursor {
		st = st.Bold(true).Underline(true)
	}
	return st
}

// Indent is the left margin of the expanded help.
func (s Styles) Indent() lipgloss.Style { return lipgloss.NewStyle().PaddingLeft(1) }
