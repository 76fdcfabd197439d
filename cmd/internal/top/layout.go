package top

import (
	"strings"
	"unicode/utf8"
)

// Widths of the top screen's blocks: a label and up to three right-aligned
// cells (four with a narrower label), so that a block fits beside another
// on a 132-column terminal and alone on an 80-column one.
const (
	labelWidth = 28
	cellWidth  = 11
	blockWidth = labelWidth + 3*cellWidth
	blockGap   = 3
	// peerLabelWidth fits the longest channel name (tx_status_cache) and
	// leaves room for a fourth cell in the peers group.
	peerLabelWidth = blockWidth - 4*cellWidth
)

// textLine is one line of a block and whether it is a group title.
type textLine struct {
	text  string
	title bool
}

// groupLines renders one group as lines of blockWidth runes at most.
func groupLines(g viewGroup) []textLine {
	lw := g.labelWidth
	if lw == 0 {
		lw = labelWidth
	}
	head := "─ " + g.title + " "
	var cols strings.Builder
	for _, c := range g.cols {
		cols.WriteString(padLeft(c, cellWidth))
	}
	fill := lw + len(g.cols)*cellWidth - runeLen(head) - runeLen(cols.String())
	if fill < 1 {
		fill = 1
	}
	lines := []textLine{{head + strings.Repeat("─", fill) + cols.String(), true}}
	for _, r := range g.rows {
		var b strings.Builder
		b.WriteString(padRight(truncate(r.label, lw-1), lw))
		for _, c := range r.cells {
			b.WriteString(padLeft(truncate(c, cellWidth-1), cellWidth))
		}
		lines = append(lines, textLine{strings.TrimRight(b.String(), " "), false})
	}
	return lines
}

// layoutScreen places the groups in columns of blockWidth on a screen of
// width × height cells (height excludes the header): each group goes under
// the previous one while it fits, else at the top of the next column. A
// group taller than the screen is cut; groups past the last column are
// dropped and counted. It returns, per screen line, the pieces to draw at
// their x offsets.
func layoutScreen(groups []viewGroup, width, height int) (lines [][]placed, dropped int) {
	if height < 1 {
		return nil, len(groups)
	}
	lines = make([][]placed, height)
	x, y := 0, 0
	for _, g := range groups {
		gl := groupLines(g)
		if y > 0 && y+len(gl) > height {
			x += blockWidth + blockGap
			y = 0
		}
		if x > 0 && x+blockWidth > width {
			dropped++
			continue
		}
		for _, l := range gl {
			if y >= height {
				break
			}
			lines[y] = append(lines[y], placed{x, l})
			y++
		}
		if y < height {
			y++ // a blank line between groups
		}
	}
	return lines, dropped
}

type placed struct {
	x int
	textLine
}

// plainLines renders every group one under the other, for a stdout that is
// not a terminal.
func plainLines(groups []viewGroup) []string {
	var out []string
	for _, g := range groups {
		for _, l := range groupLines(g) {
			out = append(out, l.text)
		}
	}
	return out
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func padLeft(s string, w int) string {
	if n := runeLen(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

func padRight(s string, w int) string {
	if n := runeLen(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// truncate cuts s to at most w runes, marking the cut with an ellipsis.
func truncate(s string, w int) string {
	if runeLen(s) <= w || w < 1 {
		return s
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}
