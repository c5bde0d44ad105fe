// Command servebench is scripts/bench-serve.sh's load generator: N clients send POST
// /v1/score to a running `diffsim serve` (over its Unix socket or HTTP) for a fixed time,
// cycling through the pairs of a reference file, and every answer's record is compared, byte
// for byte, with the record `diffsim score --json --no-server` printed for that pair. It prints
// one line: requests, requests per second, p50 and p99 latency, mismatches and errors.
//
//	servebench -socket S.sock | -http HOST:PORT  -clients N -duration 30s -ref ref.jsonl [-model M]
//	servebench -socket S.sock -held      models loaded, bytes held, the bound
//
// ref.jsonl holds one `score --json` record per line, with absolute image paths (the server
// answers with absolute paths); the request for a line is its image_a and image_b at the
// record's layer index, t, metric, size and seed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
)

func main() { os.Exit(run()) }

func run() int {
	socket := flag.String("socket", "", "the server's Unix socket")
	addr := flag.String("http", "", "the server's HTTP address (instead of -socket)")
	clients := flag.Int("clients", 8, "concurrent clients")
	duration := flag.Duration("duration", 30*time.Second, "how long to send requests")
	ref := flag.String("ref", "", "reference records (score --json --no-server), one per line")
	model := flag.String("model", "", "the model as the commands named it (default: the records' model name)")
	held := flag.Bool("held", false, "print the models loaded, the bytes they and the requests hold, and the bound, then exit")
	flag.Parse()
	if *held {
		m, err := api.NewClient(*socket).Models(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "servebench:", err)
			return 1
		}
		fmt.Println(len(m.Models), m.Bytes+m.WorkBytes, m.MaxBytes)
		return 0
	}
	pairs, err := readRef(*ref, *model)
	if err != nil {
		fmt.Fprintln(os.Stderr, "servebench:", err)
		return 2
	}
	client := func() *api.Client {
		if *addr != "" {
			return api.NewHTTPClient(*addr)
		}
		return api.NewClient(*socket)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var mismatches, errs int
	var firstProblem string
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client() // one connection per client, as separate processes would have
			for n := i; ctx.Err() == nil; n++ {
				p := pairs[n%len(pairs)]
				t0 := time.Now()
				r, err := c.Score(ctx, p.req)
				d := time.Since(t0)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				got, _ := json.Marshal(r.Record)
				mu.Lock()
				switch {
				case err != nil:
					errs++
					if firstProblem == "" {
						firstProblem = err.Error()
					}
				case !bytes.Equal(got, p.want):
					mismatches++
					if firstProblem == "" {
						firstProblem = fmt.Sprintf("served %s\n  local %s", got, p.want)
					}
				default:
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("requests %d  req/s %.1f  p50_ms %.1f  p99_ms %.1f  mismatches %d  errors %d\n",
		len(lat)+mismatches+errs, float64(len(lat))/elapsed.Seconds(), pct(0.50), pct(0.99), mismatches, errs)
	if firstProblem != "" {
		fmt.Fprintln(os.Stderr, "servebench: first problem:", firstProblem)
	}
	if mismatches+errs > 0 {
		return 1
	}
	return 0
}

type pair struct {
	req  api.ScoreRequest
	want []byte // the record as encoding/json writes it
}

func readRef(path, model string) ([]pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []pair
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec api.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		want, _ := json.Marshal(rec)
		if model == "" {
			model = rec.Model
		}
		spec := api.DefaultSpec()
		spec.Model, spec.Size, spec.Seed, spec.Device = model, rec.Size, rec.Seed, rec.Device
		sel := api.Selection{Layer: strconv.Itoa(rec.LayerIndex), T: rec.T, Metric: rec.Metric}
		out = append(out, pair{
			req:  api.ScoreRequest{ModelRef: api.ModelRef{Spec: spec}, Selection: sel, ImageA: rec.ImageA, ImageB: rec.ImageB},
			want: want,
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	return out, sc.Err()
}
