package serve

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine/attention/testgraphs"
	"github.com/diffsim/diffsim/engine/enginetest"
	"github.com/diffsim/diffsim/engine/onnx"
	"github.com/diffsim/diffsim/features/families"
	"github.com/diffsim/diffsim/session"
)

// TestChangedModelFileIsReloaded: a model named by its file is the file as it is now. A file
// rewritten since its model loaded loads anew (the stale model unloads), and a file deleted
// is refused rather than answered from memory.
func TestChangedModelFileIsReloaded(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(file, []byte("version 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var opened []string     // the file's content at each load
	var models []*fakeModel // in load order
	open := func(_ context.Context, o session.Options) (api.Scorer, error) {
		b, err := os.ReadFile(o.Spec.Model)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		opened = append(opened, string(b))
		f := newFake(string(b), 1)
		models = append(models, f)
		return f, nil
	}
	unix := startWith(t, New(Config{Open: open}))
	imgs := images(t, 2)
	score := func() (api.Scored, error) {
		return unix.Score(context.Background(), api.ScoreRequest{ModelRef: model(file), ImageA: imgs[0], ImageB: imgs[1]})
	}
	for range 2 {
		if _, err := score(); err != nil {
			t.Fatal(err)
		}
	}
	// Rewritten in place, with another size (a new mtime alone would do, but coarse clocks
	// could hide it from this test).
	if err := os.WriteFile(file, []byte("version 2, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := score()
	if err != nil {
		t.Fatal(err)
	}
	// Replaced by another file (a new inode), as `cp new.onnx m.onnx` after `rm` or a rename does.
	tmp := filepath.Join(dir, "new.onnx")
	os.WriteFile(tmp, []byte("version 3, longer"), 0o644)
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	if _, err := score(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), opened...)
	mu.Unlock()
	if want := []string{"version 1", "version 2, longer", "version 3, longer"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("loads read %q, want %q (one per version of the file)", got, want)
	}
	if r.Model != "version 2, longer" {
		t.Errorf("after the rewrite the answer came from %q", r.Model)
	}
	if !models[0].closed.Load() || !models[1].closed.Load() || models[2].closed.Load() {
		t.Errorf("stale models still loaded (closed: %v %v %v)", models[0].closed.Load(), models[1].closed.Load(), models[2].closed.Load())
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	_, err = score()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "no such file") {
		t.Errorf("a deleted model file: %v, want a 400 saying it is gone", err)
	}
}

// TestServedModelIsTheFileOnDisk: a real model file rewritten with other weights between
// requests is served as a session opened on it then would answer, bit for bit.
func TestServedModelIsTheFileOnDisk(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vit.onnx")
	write := func(seed uint64) {
		o := testgraphs.TinyViT()
		o.Seed = seed
		m, _ := testgraphs.ViT(testgraphs.DINOv2Eager, o)
		if err := onnx.WriteFile(file, m); err != nil {
			t.Fatal(err)
		}
	}
	samples, _ := filepath.Abs("../../testdata/samples")
	a, b := filepath.Join(samples, "grass.png"), filepath.Join(samples, "brick.png")
	base := session.Options{Spec: api.DefaultSpec(), Families: families.All()}
	base.Spec.Device = "cpu"
	unix := startWith(t, New(Config{Base: base}))
	direct := func() string {
		o := base
		o.Spec.Model = file
		s, err := session.Open(context.Background(), o)
		enginetest.Check(t, err)
		defer s.Close()
		ia, _ := s.Load(a)
		ib, _ := s.Load(b)
		info := s.Info()
		r, err := s.Score(context.Background(), api.Request{A: ia, B: ib, Layer: info.DefaultLayer, T: info.DefaultT, Metric: api.AAS, Token: -1})
		if err != nil {
			t.Fatal(err)
		}
		return mustJSON(t, api.RecordOf(s, r))
	}
	served := func() string {
		r, err := unix.Score(context.Background(), api.ScoreRequest{ModelRef: modelWith(file, func(s *api.Spec) { s.Device = "cpu" }), ImageA: a, ImageB: b})
		if err != nil {
			t.Fatal(err)
		}
		return mustJSON(t, r.Record)
	}
	var answers []string
	for _, seed := range []uint64{1, 2} {
		write(seed)
		want := direct()
		if got := served(); got != want {
			t.Fatalf("weights of seed %d:\nserved %s\ndirect %s", seed, got, want)
		}
		answers = append(answers, want)
	}
	if answers[0] == answers[1] {
		t.Fatal("the two weights score alike: the test shows nothing")
	}
}
