package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/policy"
)

// Usage errors name the flag, key or command at fault and, when the word
// looks like a misspelling of a known one, suggest it.

// suggest returns the known words closest to word (edit distance at most
// 2, or a prefix), best first.
func suggest(word string, known []string) []string {
	type cand struct {
		w string
		d int
	}
	var cands []cand
	lw := strings.ToLower(word)
	for _, k := range known {
		lk := strings.ToLower(k)
		if lk == lw {
			continue
		}
		d := editDistance(lw, lk)
		if d <= 2 || (len(lw) >= 3 && strings.HasPrefix(lk, lw)) {
			cands = append(cands, cand{k, d})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].d < cands[j].d })
	out := make([]string, 0, len(cands))
	for _, c := range cands {
		out = append(out, c.w)
	}
	return out
}

// didYouMean is " (did you mean X?)" for the closest known word, or "".
func didYouMean(word string, known []string, format func(string) string) string {
	s := suggest(word, known)
	if len(s) == 0 {
		return ""
	}
	return " (did you mean " + format(s[0]) + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func flagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}

// commandNames lists root's commands.
func commandNames(root *cobra.Command) []string {
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	return names
}

var unknownFlag = regexp.MustCompile(`^unknown flag: --([^\s=]+)`)

// flagError makes a flag parsing error a usage error (exit 2), with a
// suggestion for a misspelt flag.
func flagError(cmd *cobra.Command, err error) error {
	if m := unknownFlag.FindStringSubmatch(err.Error()); m != nil {
		hint := didYouMean(m[1], flagNames(cmd.Flags()), func(s string) string { return "--" + s })
		if hint == "" && cmd.HasParent() {
			// --version and --help are the root's: "serve --verison"
			// means the version command.
			hint = didYouMean(m[1], commandNames(cmd.Root()), func(s string) string { return "'" + cmd.Root().Name() + " " + s + "'" })
		}
		return configError{fmt.Errorf("%w%s", err, hint)}
	}
	return configError{err}
}

// unknownCommand is root's argument check: an unknown command is a usage
// error (exit 2), with cobra's suggestions.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return configErrorf("%s; run '%s help' for the commands", msg, cmd.CommandPath())
}

// sourceError makes the policy errors that are the user's configuration
// usage errors (exit 2) naming the flag: a path given to flag (--policy,
// --bundle) that does not exist, a --decision nothing defines. Others are
// returned as they are.
func sourceError(flag string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return configErrorf("%s: %w", flag, err)
	case errors.Is(err, policy.ErrUndefinedDecision):
		return configErrorf("--decision: %w", err)
	}
	return err
}

// printError writes err for a person: a policy that does not compile gets
// one line per problem, each followed by its source line and a caret under
// the column, as `opa check` shows them.
func printError(w *os.File, err error) {
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, "regoguard:", redactURLs(err.Error()))
		return
	}
	prefix := redactURLs(strings.TrimSuffix(err.Error(), ce.Error()))
	n := len(ce.Problems)
	noun := "errors"
	if n == 1 {
		noun = "error"
	}
	fmt.Fprintf(w, "regoguard: %s%d %s in the policy:\n", prefix, n, noun)
	for _, p := range ce.Problems {
		fmt.Fprintln(w, p.String())
		if line, caret, ok := sourceLine(p); ok {
			fmt.Fprintf(w, "\t%s\n\t%s\n", line, caret)
		}
	}
}

// sourceLine reads the line a problem points at and a caret under its
// column; tabs are kept so that the caret lines up.
func sourceLine(p policy.Problem) (string, string, bool) {
	if p.File == "" || p.Line <= 0 {
		return "", "", false
	}
	data, err := os.ReadFile(p.File)
	if err != nil {
		return "", "", false
	}
	lines := strings.Split(string(data), "\n")
	if p.Line > len(lines) {
		return "", "", false
	}
	line := strings.TrimRight(lines[p.Line-1], "\r")
	col := max(p.Column, 1)
	var caret strings.Builder
	for i, r := range []rune(line) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			caret.WriteRune('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	caret.WriteByte('^')
	return line, caret.String(), true
}
