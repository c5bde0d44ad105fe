package session

import (
	"fmt"
	"strconv"
	"strings"
)

// ResolveLayer finds a layer by index, full name, unique name suffix, or the paper's short
// name (Up0, Down1, …; case-insensitive). Empty means the model's default layer.
func (s *Session) ResolveLayer(arg string) (int, error) { return ResolveLayer(s.info, arg) }

// ResolveLayer is (*Session).ResolveLayer for a model described by info, for callers that
// hold no session (a client of diffsim serve).
func ResolveLayer(info ModelInfo, arg string) (int, error) {
	layers := info.Layers
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return info.DefaultLayer, nil
	}
	names := func() string {
		ns := make([]string, 0, len(layers))
		for i, l := range layers {
			ns = append(ns, fmt.Sprintf("%d %s", i, l.Label()))
		}
		return strings.Join(ns, ", ")
	}
	if i, err := strconv.Atoi(arg); err == nil {
		if i < 0 || i >= len(layers) {
			return 0, usagef("--layer %d is outside 0..%d (layers: %s)", i, len(layers)-1, names())
		}
		return i, nil
	}
	for i, l := range layers {
		if l.Name == arg {
			return i, nil
		}
	}
	for i, l := range layers {
		if l.Short != "" && strings.EqualFold(l.Short, arg) {
			return i, nil
		}
	}
	var matches []int
	for i, l := range layers {
		if strings.HasSuffix(l.Name, arg) || strings.HasPrefix(l.Name, arg+".") || strings.HasPrefix(l.Name, arg) {
			matches = append(matches, i)
		}
	}
	if len(matches) == 1 {
		return matches[0], nil
	}
	if len(matches) > 1 {
		return 0, usagef("--layer %q matches %d layers; be more specific (layers: %s)", arg, len(matches), names())
	}
	return 0, usagef("no layer %q (layers: %s)", arg, names())
}
