package check

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cache defaults of NewCachedFiles.
const (
	DefaultFilesTTL     = 10 * time.Minute
	DefaultFilesEntries = 1024
)

// CachedFiles is a PolicyFiles that remembers the answers it can: a file at a commit SHA, and
// the commits reachable from a commit SHA that changed a path, never change, so every check of
// the same base (each pull request into the same main) reads the policy once, not once per
// check. A ref that is not a full SHA (a branch, a tag) moves, and is always asked anew, as is
// anything after an error: errors are never kept. Concurrent identical calls share one fetch.
//
// Entries live for the TTL and at most MaxEntries are kept (the oldest go first); that bounds
// the memory, not their truth. Invalidate drops a repository's entries anyway: the bot calls it
// when a push changes the policy file, so the cache never has to be reasoned about there.
type CachedFiles struct {
	files PolicyFiles
	ttl   time.Duration

	// MaxEntries bounds the entries kept (default DefaultFilesEntries). Set before first use.
	MaxEntries int
	// Now is the cache's clock (default time.Now). Set before first use.
	Now func() time.Time

	mu       sync.Mutex
	entries  map[fileKey]*list.Element // of *fileEntry
	order    *list.List                // *fileEntry, oldest first
	inflight map[fileKey]*fileFetch
}

// NewCachedFiles wraps files in a cache whose entries live for ttl (0: DefaultFilesTTL;
// negative: nothing is kept, every call goes to files).
func NewCachedFiles(files PolicyFiles, ttl time.Duration) *CachedFiles {
	if ttl == 0 {
		ttl = DefaultFilesTTL
	}
	return &CachedFiles{files: files, ttl: ttl, entries: map[fileKey]*list.Element{}, order: list.New(), inflight: map[fileKey]*fileFetch{}}
}

// fileKey names one answer. repo is lower-cased: GitHub's names are not case-sensitive, and a
// push names the repository as GitHub spells it, the configuration as a person typed it.
type fileKey struct {
	op              byte // 'f' File, 'c' PathCommits
	repo, path, ref string
}

// fileAnswer is what File (content, found) or PathCommits (commits) answered.
type fileAnswer struct {
	content []byte
	found   bool
	commits []string
}

func (a fileAnswer) clone() fileAnswer {
	return fileAnswer{content: slices.Clone(a.content), found: a.found, commits: slices.Clone(a.commits)}
}

type fileEntry struct {
	key    fileKey
	answer fileAnswer
	at     time.Time // when it was kept
}

// fileFetch is one call to the wrapped PolicyFiles, shared by every caller that asked the same
// while it was in flight. It runs on a context of its own, cancelled only when every caller
// waiting for it has given up, so one check's cancellation does not fail another's read.
type fileFetch struct {
	done      chan struct{} // closed when answer and err are set
	answer    fileAnswer
	err       error
	waiters   int
	cancel    context.CancelFunc
	forgotten bool // Invalidate was called meanwhile: its answer is not kept
}

// File is PolicyFiles.File, kept when ref is a commit SHA.
func (c *CachedFiles) File(ctx context.Context, repo, path, ref string) ([]byte, bool, error) {
	if !c.keeps(ref) {
		return c.files.File(ctx, repo, path, ref)
	}
	a, err := c.get(ctx, fileKey{'f', strings.ToLower(repo), path, ref}, func(ctx context.Context) (fileAnswer, error) {
		content, found, err := c.files.File(ctx, repo, path, ref)
		return fileAnswer{content: content, found: found}, err
	})
	if err != nil {
		return nil, false, err
	}
	return a.content, a.found, nil
}

// PathCommits is PolicyFiles.PathCommits, kept when ref is a commit SHA.
func (c *CachedFiles) PathCommits(ctx context.Context, repo, ref, path string) ([]string, error) {
	if !c.keeps(ref) {
		return c.files.PathCommits(ctx, repo, ref, path)
	}
	a, err := c.get(ctx, fileKey{'c', strings.ToLower(repo), path, ref}, func(ctx context.Context) (fileAnswer, error) {
		commits, err := c.files.PathCommits(ctx, repo, ref, path)
		return fileAnswer{commits: commits}, err
	})
	if err != nil {
		return nil, err
	}
	return a.commits, nil
}

// Invalidate drops every entry of repo, and keeps nothing of the reads of it in flight.
func (c *CachedFiles) Invalidate(repo string) {
	repo = strings.ToLower(repo)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.entries {
		if k.repo == repo {
			c.order.Remove(el)
			delete(c.entries, k)
		}
	}
	for k, f := range c.inflight {
		if k.repo == repo {
			f.forgotten = true
			delete(c.inflight, k)
		}
	}
}

// Len is the number of entries kept (expired ones included until they are dropped).
func (c *CachedFiles) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// keeps says whether answers at ref may be kept: only at a full commit SHA, which names the same
// tree and history forever.
func (c *CachedFiles) keeps(ref string) bool {
	return c.ttl > 0 && fullSHA.MatchString(ref)
}

func (c *CachedFiles) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// get answers key from the cache, or from the fetch in flight for it, or from a new fetch. The
// answer is the caller's own copy.
func (c *CachedFiles) get(ctx context.Context, key fileKey, fetch func(context.Context) (fileAnswer, error)) (fileAnswer, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*fileEntry)
		if c.now().Sub(e.at) < c.ttl {
			a := e.answer.clone()
			c.mu.Unlock()
			return a, nil
		}
		c.order.Remove(el)
		delete(c.entries, key)
	}
	f := c.inflight[key]
	if f == nil {
		// Detached from this caller's cancellation (not from its values), so callers who join
		// it are not failed by this one leaving; cancelled when the last waiter leaves.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &fileFetch{done: make(chan struct{}), cancel: cancel}
		c.inflight[key] = f
		go c.run(fctx, key, f, fetch)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		c.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
			if c.inflight[key] == f {
				delete(c.inflight, key) // the next caller starts afresh rather than join a cancelled fetch
			}
		}
		c.mu.Unlock()
		return fileAnswer{}, Trace(context.Cause(ctx))
	}
	if f.err != nil {
		return fileAnswer{}, f.err
	}
	return f.answer.clone(), nil
}

// run fetches key for f, a panic recovered into its error like the rest of the check's, and
// keeps the answer if there was no error.
func (c *CachedFiles) run(ctx context.Context, key fileKey, f *fileFetch, fetch func(context.Context) (fileAnswer, error)) {
	var a fileAnswer
	err := Safely(func() error {
		var err error
		a, err = fetch(ctx)
		return err
	})
	c.mu.Lock()
	f.answer, f.err = a, err
	if c.inflight[key] == f {
		delete(c.inflight, key)
	}
	if err == nil && !f.forgotten {
		c.put(key, a.clone())
	}
	c.mu.Unlock()
	f.cancel()
	close(f.done)
}

// put keeps an answer, dropping expired entries and then the oldest beyond MaxEntries. c.mu is
// held.
func (c *CachedFiles) put(key fileKey, a fileAnswer) {
	now := c.now()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushBack(&fileEntry{key: key, answer: a, at: now})
	max := c.MaxEntries
	if max <= 0 {
		max = DefaultFilesEntries
	}
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		e := el.Value.(*fileEntry)
		if len(c.entries) <= max && now.Sub(e.at) < c.ttl {
			break
		}
		c.order.Remove(el)
		delete(c.entries, e.key)
	}
}

var _ PolicyFiles = (*CachedFiles)(nil)
