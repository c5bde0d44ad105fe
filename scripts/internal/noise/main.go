// Command noise writes diffsim's seeded noise, schedule.Noise(SEED, N), to stdout as N
// little-endian float32 values: scripts/check-torch.py feeds PyTorch the very noise diffsim
// adds to both latents.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/diffsim/diffsim/features/schedule"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: noise SEED N")
		os.Exit(2)
	}
	seed, err1 := strconv.ParseInt(os.Args[1], 10, 64)
	n, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "noise: SEED and N are integers, N > 0")
		os.Exit(2)
	}
	if err := binary.Write(os.Stdout, binary.LittleEndian, schedule.Noise(seed, n)); err != nil {
		fmt.Fprintln(os.Stderr, "noise:", err)
		os.Exit(1)
	}
}
