package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ProgressLines logs a run's progress as plain lines, one every Every decisions and one at
// the end, with the rate and the time left: what a cluster job's log file can hold (a bar
// redrawn with carriage returns turns into noise there).
type ProgressLines struct {
	W     io.Writer
	Label string // "triplet shard 1/4"
	Unit  string // what is counted; "" is "decisions"
	Every int    // decisions between lines; 0 picks about every 5% of the shard, at most 100
	Now   func() time.Time

	started   bool
	start     time.Time
	startDone int
	last      int
}

// Update takes the shard's decisions done so far and its size; Run.Progress calls it.
func (p *ProgressLines) Update(done, total int) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if !p.started {
		p.started, p.start, p.startDone, p.last = true, now(), done, done
		if p.Every <= 0 {
			p.Every = min(max(total/20, 1), 100)
		}
		return
	}
	if done-p.last < p.Every && done < total {
		return
	}
	if done == p.last {
		return
	}
	p.last = done
	elapsed := now().Sub(p.start)
	made := done - p.startDone
	unit := p.Unit
	if unit == "" {
		unit = "decisions"
	}
	line := fmt.Sprintf("diffsim: %s: %d/%d %s (%.0f%%)", p.Label, done, total, unit, 100*float64(done)/float64(max(total, 1)))
	if made > 0 && elapsed > 0 {
		rate := float64(made) / elapsed.Seconds()
		line += fmt.Sprintf(", %s/s", rateText(rate))
		if done < total {
			line += ", ETA " + roundDuration(time.Duration(float64(total-done)/rate*float64(time.Second)))
		} else {
			line += ", took " + roundDuration(elapsed)
		}
	}
	fmt.Fprintln(p.W, line)
}

func rateText(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

// roundDuration keeps a duration readable: 850ms, 12s, 3m20s, 2h5m.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}
