package ui

import (
	"testing"
)

func TestPressSpellsBindings(t *testing.T) {
	for _, name := range []string{"up", "down", "left", "right", "enter", "esc", "pgup", "pgdown", "ctrl+c", "shift+left", "J", ",", "<", "?"} {
		if got := press(name).String(); got != name {
			t.Errorf("press(%q).String() = %q", name, got)
		}
	}
}

func TestHelpListsEveryBinding(t *testing.T) {
	k := DefaultKeyMap()
	n := 0
	for _, g := range k.FullHelp() {
		for _, b := range g {
			if b.Help().Key == "" || b.Help().Desc == "" {
				t.Errorf("binding %v has no help", b.Keys())
			}
			n++
		}
	}
	if n != 28 { // all but the prompt's enter and esc, which its own line shows
		t.Errorf("full help lists %d bindings, want every key", n)
	}
}
