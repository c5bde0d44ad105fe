package ui

import "charm.land/bubbles/v2/help"

// component is what every part of the screen is, as soft-serve's common.Component: it draws
// itself at the size it is given and names its keys for the help (none for most). Each keeps
// its own state (a cursor, a scale, scrolling, the overlay) behind methods; the root hands
// it what the root owns through its SetData, and routes its messages to its Update, which
// returns the component's own type as bubbles' components do.
type component interface {
	help.KeyMap
	SetSize(w, h int)
	View() string
}

var (
	_ component = (*titleBar)(nil)
	_ component = (*pairView)(nil)
	_ component = (*scorePanel)(nil)
	_ component = (*layerList)(nil)
	_ component = (*sweepModel)(nil)
	_ component = (*timeline)(nil)
	_ component = (*clipPanel)(nil)
	_ component = (*statusBar)(nil)
	_ component = (*promptBar)(nil)
	_ component = (*picker)(nil)
)
