// Command curves measures how the engine's cost grows with the size of the
// policy and of its data, against the OPA server on the same inputs.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 1 || os.Args[1] == "run" || strings.HasPrefix(os.Args[1], "-"):
		args := os.Args[1:]
		if len(args) > 0 && args[0] == "run" {
			args = args[1:]
		}
		err = runAll(args)
	case os.Args[1] == "engine-activation":
		err = runEngineActivation(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "engine":
		err = runEngine(os.Args[2:])
	case len(os.Args) == 4 && os.Args[1] == "gen-rules":
		// curves gen-rules DIR N: the policy-size case of N rules.
		var n int
		if _, err = fmt.Sscan(os.Args[3], &n); err == nil {
			var c testCase
			if c, err = genRules(os.Args[2], n, false); err == nil {
				err = writeJSON(os.Args[2]+".input.json", c.input)
			}
		}
	case len(os.Args) == 4 && os.Args[1] == "gen-data":
		// curves gen-data DIR N: the data-size case of N documents, to
		// profile by hand (curves engine -dir DIR -input DIR.input.json).
		var n int
		if _, err = fmt.Sscan(os.Args[3], &n); err == nil {
			var c testCase
			if c, err = genData(os.Args[2], n, 0); err == nil {
				err = writeJSON(os.Args[2]+".input.json", c.input)
			}
		}
	default:
		err = errors.New("usage: curves [run] [flags] | curves gen-rules DIR N | curves gen-data DIR N | curves engine FLAGS | curves engine-activation FLAGS")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "curves:", err)
		os.Exit(1)
	}
}
