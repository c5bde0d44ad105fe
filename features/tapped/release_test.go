package tapped_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/tapped"
)

// countingLoader opens a fresh fakeRunner per session, each counting its closes; a run of a
// session whose outputs are fewer than all (a pruned one) waits at gate when it is set.
type countingLoader struct {
	mu       sync.Mutex
	sessions []*closingRunner
	gate     chan struct{}
	entered  chan struct{}
	all      int // the full session's output count
}

type closingRunner struct {
	*fakeRunner
	closes  atomic.Int32
	pruned  bool
	gate    chan struct{}
	entered chan struct{}
}

func (r *closingRunner) Close() error { r.closes.Add(1); return nil }

func (r *closingRunner) Run(ctx context.Context, in ...engine.Tensor) ([]engine.Tensor, error) {
	if r.pruned && r.gate != nil {
		r.entered <- struct{}{}
		<-r.gate
	}
	return r.fakeRunner.Run(ctx, in...)
}

func (l *countingLoader) Load(_ []byte, so engine.SessionOptions) (engine.Runner, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &closingRunner{
		fakeRunner: &fakeRunner{outputs: so.Outputs, batch: 2, tokens: 17, width: func(string) int { return testgraphs.DefaultOptions().Channels }},
		pruned:     len(so.Outputs) < l.all, gate: l.gate, entered: l.entered,
	}
	l.sessions = append(l.sessions, r)
	return r, nil
}

// TestReleasePruned: ReleasePruned closes the pruned sessions and keeps the whole graph's; a
// pruned session in use by a run is closed when that run ends, not under it; a later pruned
// run opens its session again.
func TestReleasePruned(t *testing.T) {
	m, _ := testgraphs.Attention(testgraphs.HFEager4D, testgraphs.DefaultOptions())
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	l := &countingLoader{}
	tm, err := tapped.Load(l, "fake", data, "", tapped.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	l.all = 3 * len(tm.Layers)
	ctx := context.Background()
	if _, err := tm.Run(ctx, 56, 56); err != nil {
		t.Fatal(err)
	}
	l.gate, l.entered = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := tm.RunLayers(ctx, []int{0}, 56, 56)
		done <- err
	}()
	<-l.entered // the pruned run is in flight
	if err := tm.ReleasePruned(); err != nil {
		t.Fatal(err)
	}
	whole, pruned := l.sessions[0], l.sessions[1]
	if n := pruned.closes.Load(); n != 0 {
		t.Fatalf("the pruned session was closed %d times under its run", n)
	}
	close(l.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := pruned.closes.Load(); n != 1 {
		t.Errorf("the released pruned session was closed %d times after its run, want once", n)
	}
	if n := whole.closes.Load(); n != 0 {
		t.Errorf("the whole graph's session was closed %d times", n)
	}
	if _, err := tm.RunLayers(ctx, []int{0}, 56, 56); err != nil {
		t.Fatal(err)
	}
	if len(l.sessions) != 3 {
		t.Fatalf("%d sessions opened, want 3 (whole, pruned, pruned again)", len(l.sessions))
	}
	if err := tm.ReleasePruned(); err != nil {
		t.Fatal(err)
	}
	if n := l.sessions[2].closes.Load(); n != 1 {
		t.Errorf("an idle pruned session was closed %d times by ReleasePruned, want once", n)
	}
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	if n := whole.closes.Load(); n != 1 {
		t.Errorf("Close closed the whole graph's session %d times, want once", n)
	}
	for i, s := range l.sessions[1:] {
		if n := s.closes.Load(); n != 1 {
			t.Errorf("pruned session %d closed %d times in all, want once", i+1, n)
		}
	}
}
