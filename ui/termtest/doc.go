// Package termtest gives tests real terminals: pseudo-terminals, for tests that run the
// explorer or a part of it against a tty while playing the terminal, and tmux sessions,
// for end-to-end tests that type keys and read the screen back.
package termtest
