package ctl

import (
	"fmt"
	"io"
	"strings"

	"github.com/schollz/progressbar/v3"
)

// progress shows the views of each poll while shoalctl waits.
type progress interface {
	show(views []view)
}

// newProgress picks bars for a terminal and lines otherwise.
func newProgress(w io.Writer, terminal bool) progress {
	if terminal {
		return &barProgress{w: w, bars: map[string]*progressbar.ProgressBar{}}
	}
	return &lineProgress{w: w, last: map[string]string{}}
}

// lineProgress prints one line per change: a slot whose state changed,
// then its service's count when that changed. The same polls always print
// the same lines (no times, no terminal codes), so logs and tests can
// read them.
type lineProgress struct {
	w    io.Writer
	last map[string]string
}

func (p *lineProgress) show(views []view) {
	var b strings.Builder
	for _, v := range views {
		for _, s := range v.slots {
			if p.last[s.key] != s.text {
				p.last[s.key] = s.text
				fmt.Fprintf(&b, "  %s: %s\n", s.key, s.text)
			}
		}
		key := "\x00" + v.name
		if st := v.status(); p.last[key] != st {
			p.last[key] = st
			fmt.Fprintf(&b, "%s: %s\n", v.name, st)
		}
	}
	io.WriteString(p.w, b.String()) // progress is best effort: a closed stderr must not fail the change
}

// barProgress redraws one progress bar per service (or node) in place,
// each followed by the first slot that is not done yet.
type barProgress struct {
	w     io.Writer
	bars  map[string]*progressbar.ProgressBar
	lines int // lines drawn by the last redraw
}

func (p *barProgress) show(views []view) {
	var b strings.Builder
	if p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines) // back to the first line drawn
	}
	width := 0
	for _, v := range views {
		width = max(width, len(v.name))
	}
	lines := 0
	for _, v := range views {
		fmt.Fprintf(&b, "\x1b[2K%s  %s\n", p.bar(v, width), v.status())
		lines++
		if s, ok := firstPending(v); ok {
			fmt.Fprintf(&b, "\x1b[2K    %s: %s\n", s.key, s.text)
			lines++
		}
	}
	// Clear what is left of a taller earlier drawing.
	for range p.lines - lines {
		b.WriteString("\x1b[2K\n")
		lines++
	}
	p.lines = lines
	io.WriteString(p.w, b.String()) // best effort, as above
}

// bar renders v's bar; progressbar draws into a discarded writer and its
// last rendering is read back, so that several bars can share the screen.
func (p *barProgress) bar(v view, width int) string {
	total := max(v.desired, 1)
	bar, ok := p.bars[v.name]
	if !ok {
		bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetDescription(fmt.Sprintf("%-*s", width, v.name)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(0),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
		)
		p.bars[v.name] = bar
	}
	if bar.GetMax() != total {
		bar.ChangeMax(total)
	}
	done := v.done
	if v.desired == 0 && v.converged {
		done = 1
	}
	_ = bar.Set(min(done, total)) // rendering into io.Discard cannot fail
	return strings.TrimSpace(strings.TrimPrefix(bar.String(), "\r"))
}

func firstPending(v view) (slotView, bool) {
	for _, s := range v.slots {
		if !s.done {
			return s, true
		}
	}
	return slotView{}, false
}
