package schedule

// SweepTimesteps is the one timestep grid of a sweep: the explorer's sweep view and the
// `sweep` command's default both use it, so a grid read in one can be found in the other.
// Every 100 steps from 0 (the paper's Fig. 5 regimes are about 100 steps wide); the range's
// end, 999, is not on it.
func SweepTimesteps() []int {
	ts := make([]int, 0, Timesteps/sweepStep)
	for t := 0; t < Timesteps; t += sweepStep {
		ts = append(ts, t)
	}
	return ts
}

const sweepStep = 100
