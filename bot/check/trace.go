package check

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"runtime"
	"strings"
)

// A failure report shows where an error happened, not where it was reported: a panic carries the
// stack it was raised on, and an error is traced where sockembot first saw it (Trace). Frames
// are printed the way a -trimpath build names them (package path and file, no build machine
// paths), and without goroutine numbers, so two runs of the same failure read the same.

// maxFrames bounds a recorded stack; the frames nearest the failure are the ones that explain it.
const maxFrames = 24

// PanicError is a recovered panic with the stack it was raised on.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// StackTrace is where the panic was raised.
func (p *PanicError) StackTrace() string { return p.Stack }

// Safely runs fn and turns a panic into a *PanicError: one bad event, or one adapter that
// panics, never takes the process down, and the check it broke fails closed.
func Safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: panicStack()}
		}
	}()
	return fn()
}

// traced is an error with the stack where sockembot first saw it.
type traced struct {
	err   error
	stack string
}

func (t *traced) Error() string      { return t.err.Error() }
func (t *traced) Unwrap() error      { return t.err }
func (t *traced) StackTrace() string { return t.stack }

// Trace records the caller's stack with err, unless err already carries one (it happened
// deeper, and that stack says more). nil stays nil.
func Trace(err error) error {
	if err == nil {
		return nil
	}
	return trace(err)
}

// Errorf is fmt.Errorf, traced.
func Errorf(format string, args ...any) error { return trace(fmt.Errorf(format, args...)) }

// trace is Trace and Errorf's one way of recording the stack of their caller.
func trace(err error) error {
	var st interface{ StackTrace() string }
	if errors.As(err, &st) {
		return err
	}
	// Skipped: runtime.Callers, callerFrames, trace, and Trace or Errorf.
	return &traced{err: err, stack: formatStack(callerFrames(4))}
}

func callerFrames(skip int) []runtime.Frame {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []runtime.Frame
	for {
		f, more := frames.Next()
		if f.Function == "runtime.goexit" {
			break
		}
		out = append(out, f)
		if !more {
			break
		}
	}
	return out
}

// panicStack is the stack of the panic being recovered: the frames below runtime.gopanic (and
// the runtime's own panic helpers, for a nil dereference or an index out of range).
func panicStack() string {
	frames := callerFrames(3)
	for i, f := range frames {
		if f.Function == "runtime.gopanic" {
			frames = frames[i+1:]
			for len(frames) > 1 && strings.HasPrefix(frames[0].Function, "runtime.") {
				frames = frames[1:]
			}
			break
		}
	}
	return formatStack(frames)
}

func formatStack(frames []runtime.Frame) string {
	var b strings.Builder
	for i, f := range frames {
		if i == maxFrames {
			fmt.Fprintf(&b, "… %d more frames\n", len(frames)-i)
			break
		}
		fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, trimmedFile(f), f.Line)
	}
	return b.String()
}

// trimmedFile names a frame's file as a -trimpath build does: the module's import path and the
// file's place in it ("sockembot/bot/check/check.go"), a dependency's module path
// ("github.com/slack-go/slack@v0.35.0/chat.go"), or the standard library's package path
// ("net/http/client.go"), never the build machine's directories. (The function's name is no
// guide: an inlined closure carries its caller's package.)
func trimmedFile(f runtime.Frame) string {
	file := filepath.ToSlash(f.File)
	switch {
	case !path.IsAbs(file):
		return file // a -trimpath build names files so already
	case moduleDir != "" && strings.HasPrefix(file, moduleDir):
		return modulePath + "/" + strings.TrimPrefix(file, moduleDir)
	case strings.Contains(file, "/pkg/mod/"):
		return file[strings.Index(file, "/pkg/mod/")+len("/pkg/mod/"):]
	case goroot != "" && strings.HasPrefix(file, goroot):
		return strings.TrimPrefix(file, goroot)
	}
	return path.Base(file)
}

// moduleDir is where this module's source was when it was built ("" under -trimpath), found
// from this file's own name; modulePath is the module's import path.
var moduleDir, modulePath, goroot = func() (string, string, string) {
	const self = "bot/check/trace.go"
	pc, file, _, _ := runtime.Caller(0)
	file = filepath.ToSlash(file)
	dir := ""
	if path.IsAbs(file) && strings.HasSuffix(file, "/"+self) {
		dir = strings.TrimSuffix(file, self)
	}
	mod := "sockembot"
	if fn := runtime.FuncForPC(pc); fn != nil {
		name := fn.Name() // "sockembot/bot/check.init.func1"
		slash := strings.LastIndex(name, "/")
		if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
			mod = strings.TrimSuffix(name[:slash+1+dot], "/bot/check")
		}
	}
	return dir, mod, filepath.ToSlash(runtime.GOROOT()) + "/src/"
}()
