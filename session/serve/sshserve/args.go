package sshserve

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/ui"
	"github.com/diffsim/diffsim/ui/termgfx"
)

// request is what a session asked for on the ssh command line.
type request struct {
	a, b     string // the pair; both empty: the picker
	layer    string
	t, step  int
	tSet     bool
	metric   string
	graphics termgfx.Protocol
	help     bool
}

// parseArgs reads `ssh HOST [A B] [--layer L] [--t N | --step N] [--metric M] [--graphics G]`.
// Flags may stand before or after the images, as on diffsim's own command line.
func parseArgs(args []string) (request, error) {
	var r request
	fs := pflag.NewFlagSet("diffsim over ssh", pflag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer)) // errors come back as one line
	fs.StringVar(&r.layer, "layer", "", "")
	fs.IntVar(&r.t, "t", -1, "")
	fs.IntVar(&r.step, "step", 0, "")
	fs.StringVar(&r.metric, "metric", "aas", "")
	graphics := fs.String("graphics", "auto", "")
	fs.BoolVarP(&r.help, "help", "h", false, "")
	if len(args) == 1 && args[0] == "help" { // ssh reads a leading --help as its own
		r.help = true
		return r, nil
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			r.help = true
			return r, nil
		}
		return r, fmt.Errorf("%v (ssh -p PORT HOST help lists what a session takes)", err)
	}
	if r.help {
		return r, nil
	}
	r.tSet = fs.Changed("t")
	if r.tSet && fs.Changed("step") {
		return r, errors.New("give --t or --step, not both")
	}
	if _, err := api.ParseMetric(r.metric); err != nil {
		return r, fmt.Errorf("--metric %q: want aas, cos or mse", r.metric)
	}
	p, err := termgfx.ParseProtocol(*graphics)
	if err != nil {
		return r, fmt.Errorf("--graphics %q: want auto, sixel, kitty, halfblock, quadrant or none", *graphics)
	}
	r.graphics = p
	switch rest := fs.Args(); len(rest) {
	case 0:
	case 2:
		r.a, r.b = rest[0], rest[1]
	default:
		return r, fmt.Errorf("give two images (or none, for a picker over the images folder), not %d: %s", len(rest), strings.Join(rest, " "))
	}
	return r, nil
}

// options turns the request into the explorer's options on a model described by info,
// resolved as every other front end resolves them (api.ModelInfo.Resolve).
func (r request) options(info api.ModelInfo) (ui.Options, error) {
	opts := ui.DefaultOptions()
	opts.Graphics = r.graphics
	sel := api.Selection{Layer: r.layer, Step: r.step, Metric: api.Metric(r.metric)}
	if r.tSet {
		sel.T = &r.t
	}
	tg, err := info.Resolve(sel)
	if err != nil {
		return opts, err
	}
	opts.Layer, opts.T, opts.Metric = tg.Layer, tg.T, tg.Metric
	return opts, nil
}

// helpText is what `ssh … --help` prints.
const helpText = `diffsim over SSH: the explorer on this server's warm model.

  ssh -t -p PORT HOST A.png B.png [flags]   explore a pair from the served images folder
  ssh -t -p PORT HOST                       pick a pair (type to filter; enter picks A, then B)
  scp -P PORT cat.png HOST:                 upload an image to your own folder (then open it by name)
  sftp -P PORT HOST                         list, fetch (exports/) and remove your files
  ssh -p PORT HOST help                     this text

Flags (after the images): --layer NAME|INDEX  --t N (0-999) or --step N  --metric aas|cos|mse
       --graphics auto|sixel|kitty|halfblock|quadrant|none
Names are relative to the images folder; your uploads come first. In the explorer, p picks
another pair, e exports into your folder (exports/), ? shows every key, q quits.
`
