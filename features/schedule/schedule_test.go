package schedule

import "testing"

// TestStepMapping: every timestep a step gives maps back to a step that gives it; t = 0, which
// no step gives, maps to 0 ("none"), never to a step StepToT refuses.
func TestStepMapping(t *testing.T) {
	for _, tc := range []struct{ t, step int }{
		{0, 0}, {1, 1000}, {101, 900}, {501, 500}, {998, 3}, {999, 2}, {-1, 0}, {1000, 0},
	} {
		if got := TToStep(tc.t); got != tc.step {
			t.Errorf("TToStep(%d) = %d, want %d", tc.t, got, tc.step)
		}
	}
	for ts := range Timesteps {
		step := TToStep(ts)
		if step == 0 {
			if ts != 0 {
				t.Errorf("t=%d has no step", ts)
			}
			continue
		}
		back, err := StepToT(step)
		if err != nil || back != ts {
			t.Errorf("StepToT(TToStep(%d) = %d) = %d, %v", ts, step, back, err)
		}
	}
	for _, bad := range []int{0, -3, 1001} {
		if _, err := StepToT(bad); err == nil {
			t.Errorf("StepToT(%d) accepted", bad)
		}
	}
	if got, _ := StepToT(1); got != 999 {
		t.Errorf("StepToT(1) = %d, want 999", got)
	}
}
