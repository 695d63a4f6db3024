package ct

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"

	"github.com/srekit/srekit/store"
)

// UnparseableRule is the rule name of fail-safe findings: entries whose
// certificate cannot be parsed are reported whatever is watched.
const UnparseableRule = "(unparseable)"

// Monitor tails logs and records findings. Set the fields, then Run.
type Monitor struct {
	Store *store.Store
	Logs  []*LogInfo
	Rules []Rule
	// Workers is the number of parallel downloads per log (4 when zero).
	Workers int
	// Batch is the number of entries per RFC 6962 get-entries request (256
	// when zero); static-ct-api logs always use whole tiles of 256.
	Batch uint64
	// Rate caps requests per second per log (0: no cap).
	Rate float64
	// Poll is the wait between tree head fetches when tailing (1 minute when zero).
	Poll time.Duration
	// Once makes Run return when every log is caught up with the tree head
	// it fetched first, instead of tailing forever.
	Once bool
	// StartIndex is where logs the store does not know yet are read from
	// (0: the beginning, which is what lets the monitor verify the whole tree).
	StartIndex uint64
	// StartTime, when set, starts new logs at their first entry logged at or
	// after it (found by binary search), overriding StartIndex.
	StartTime time.Time
	// CommitEvery is how many entries are processed between commits (4096
	// when zero). A crash loses at most that much work, never a finding.
	CommitEvery uint64
	HTTP        *http.Client
	UserAgent   string
	Notifier    *Notifier
	Metrics     *Metrics
	Logger      *slog.Logger
	// Progress, when set, is called after each commit.
	Progress func(l *LogInfo, position, treeSize uint64)

	matcher *Matcher
}

func (m *Monitor) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

// Run monitors every log until ctx ends (or, with Once, until each is caught
// up). Logs are independent: a failing log does not stop the others; the
// errors of all logs are returned together.
func (m *Monitor) Run(ctx context.Context) error {
	m.matcher = NewMatcher(m.Rules)
	if m.Workers <= 0 {
		m.Workers = 4
	}
	if m.CommitEvery == 0 {
		m.CommitEvery = 4096
	}
	if m.Poll <= 0 {
		m.Poll = time.Minute
	}
	var notifyDone chan struct{}
	nctx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	if m.Notifier != nil {
		notifyDone = make(chan struct{})
		go func() {
			defer close(notifyDone)
			m.Notifier.Loop(nctx)
		}()
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, l := range m.Logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.runLog(ctx, l); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", l.Description, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if m.Notifier != nil {
		// Deliver what the last commits found before returning, unless the
		// caller is being torn down.
		if ctx.Err() == nil {
			if err := m.Notifier.Drain(nctx); err != nil {
				errs = append(errs, fmt.Errorf("findings are stored but not all delivered (retried on the next run): %w", err))
			}
		}
		stopNotify()
		<-notifyDone
	} else {
		stopNotify()
	}
	return errors.Join(errs...)
}

func (m *Monitor) runLog(ctx context.Context, l *LogInfo) error {
	f := &Fetcher{HTTP: m.HTTP, Rate: m.Rate, UserAgent: m.UserAgent}
	c := NewClient(l, f, m.Batch)
	start := m.StartIndex
	st, err := loadOrCreateLog(ctx, m.Store, l, 0)
	if err != nil {
		return err
	}
	if st.Position == 0 && st.VerifiedSize == 0 && (start > 0 || !m.StartTime.IsZero()) {
		if !m.StartTime.IsZero() {
			th, err := c.TreeHead(ctx)
			if err != nil {
				return err
			}
			if start, err = findIndexByTime(ctx, c, th.Size, m.StartTime); err != nil {
				return fmt.Errorf("find start by time: %w", err)
			}
		}
		fstart, frontier := start, [][]byte(nil)
		if fc, ok := c.(interface {
			Frontier(ctx context.Context, k, treeSize uint64) ([][]byte, error)
		}); ok && start > 0 {
			// Tiled logs give the frontier at start from their hash tiles,
			// so the backfilled part is verified like the rest.
			th, err := c.TreeHead(ctx)
			if err != nil {
				return err
			}
			if err := th.Verify(l.PublicKey); err != nil {
				return m.problem(ctx, l, "bad_signature", fmt.Sprintf("tree head of size %d does not verify", th.Size), ErrBadSignature)
			}
			if start > th.Size {
				start = th.Size
			}
			if frontier, err = fc.Frontier(ctx, start, th.Size); err != nil {
				return fmt.Errorf("frontier at %d: %w", start, err)
			}
			fstart = 0
		}
		if _, err := m.Store.Exec(ctx, `UPDATE ct_logs SET position = ?, frontier_start = ?, frontier = ? WHERE log_id = ?`, int64(start), int64(fstart), joinHashes(frontier), l.IDString()); err != nil {
			return err
		}
		st.Position, st.FrontierStart, st.Frontier = start, fstart, frontier
	}
	for {
		err := m.pass(ctx, l, c, st)
		m.Metrics.observeFetcher(l, f)
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrBadSignature) || errors.Is(err, errFork) {
				// Already recorded as a problem; keep it loud and stop this log.
				return err
			}
			m.logger().Warn("ct log pass failed", "log", l.Description, "err", err)
			setStatus(context.WithoutCancel(ctx), m.Store, l.IDString(), "error", err.Error())
			if m.Once {
				return err
			}
		}
		if m.Once || ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(m.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// problem records and logs a loud report and returns err wrapped.
func (m *Monitor) problem(ctx context.Context, l *LogInfo, kind, detail string, err error) error {
	m.logger().Error("CT LOG PROBLEM", "log", l.Description, "kind", kind, "detail", detail)
	m.Metrics.problem(l, kind)
	if rerr := recordProblem(context.WithoutCancel(ctx), m.Store, Problem{LogID: l.IDString(), Kind: kind, Detail: detail}); rerr != nil {
		return errors.Join(fmt.Errorf("%w: %s", err, detail), rerr)
	}
	return fmt.Errorf("%w: %s", err, detail)
}

// pass fetches and verifies the newest tree head and processes every entry up to it.
func (m *Monitor) pass(ctx context.Context, l *LogInfo, c Client, st *LogState) error {
	th, err := c.TreeHead(ctx)
	if err != nil {
		return fmt.Errorf("tree head: %w", err)
	}
	if err := th.Verify(l.PublicKey); err != nil {
		saveTreeHead(ctx, m.Store, l.IDString(), th, false)
		return m.problem(ctx, l, "bad_signature", fmt.Sprintf("tree head of size %d at %s does not verify with the log's key", th.Size, msTime(th.Timestamp)), ErrBadSignature)
	}
	if err := saveTreeHead(ctx, m.Store, l.IDString(), th, true); err != nil {
		return err
	}
	if th.Size > st.LatestSize {
		st.LatestSize, st.LatestTimestamp = th.Size, th.Timestamp
	}
	m.Metrics.treeHead(l, th, st)
	switch {
	case th.Size == st.VerifiedSize && st.VerifiedRoot != nil:
		if !bytes.Equal(th.Root[:], st.VerifiedRoot) {
			return m.problem(ctx, l, "fork", fmt.Sprintf("two signed tree heads of size %d with different roots %s and %s", th.Size, hexs(st.VerifiedRoot), hexs(th.Root[:])), errFork)
		}
		return nil
	case th.Size < st.VerifiedSize:
		// A stale head (caches, load balancers): it must still be a prefix.
		if l.Kind == RFC6962 && th.Size > 0 {
			if err := m.checkConsistency(ctx, l, c, th.Size, th.Root[:], st.VerifiedSize, st.VerifiedRoot); err != nil {
				return err
			}
		}
		return nil
	}
	if l.Kind == RFC6962 && st.VerifiedSize > 0 && st.VerifiedRoot != nil {
		if err := m.checkConsistency(ctx, l, c, st.VerifiedSize, st.VerifiedRoot, th.Size, th.Root[:]); err != nil {
			return err
		}
	}
	if th.Size > st.Position {
		if err := m.download(ctx, l, c, st, th); err != nil {
			return err
		}
	}
	return m.verifyRoot(ctx, l, st, th)
}

func (m *Monitor) checkConsistency(ctx context.Context, l *LogInfo, c Client, size1 uint64, root1 []byte, size2 uint64, root2 []byte) error {
	p, err := ConsistencyProof(ctx, c.Fetcher(), l, size1, size2)
	if err != nil {
		return fmt.Errorf("consistency proof %d..%d: %w", size1, size2, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, p, root1, root2); err != nil {
		return m.problem(ctx, l, "fork", fmt.Sprintf("tree heads of size %d (root %s) and %d (root %s) are not consistent: the consistency proof does not verify", size1, hexs(root1), size2, hexs(root2)), errFork)
	}
	return nil
}

// verifyRoot compares the frontier rebuilt from the entries with the tree
// head, once every entry up to it has been processed.
func (m *Monitor) verifyRoot(ctx context.Context, l *LogInfo, st *LogState, th *TreeHead) error {
	if st.Position != th.Size {
		return nil
	}
	if st.FrontierStart == 0 {
		r, err := rangeFactory.NewRange(0, st.Position, st.Frontier)
		if err != nil {
			return fmt.Errorf("stored frontier: %w", err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(root, th.Root[:]) {
			return m.problem(ctx, l, "fork", fmt.Sprintf("the %d entries served hash to root %s but the signed tree head says %s: the log is not append-only or served different entries", th.Size, hexs(root), hexs(th.Root[:])), errFork)
		}
	}
	_, err := m.Store.Exec(ctx, `UPDATE ct_logs SET verified_size = ?, verified_root = ?, verified_timestamp = ?, status = 'ok', last_error = '', updated_ms = ? WHERE log_id = ?`,
		int64(th.Size), th.Root[:], int64(th.Timestamp), nowMS(), l.IDString())
	if err != nil {
		return err
	}
	st.VerifiedSize, st.VerifiedRoot, st.VerifiedTimestamp = th.Size, th.Root[:], th.Timestamp
	return nil
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

type job struct {
	start, end uint64
	res        chan jobResult
}

type jobResult struct {
	hashes   [][32]byte
	findings []Finding
	err      error
}

// download fetches entries [st.Position, th.Size) with parallel workers,
// processes them in order and commits progress, frontier and findings together.
func (m *Monitor) download(ctx context.Context, l *LogInfo, c Client, st *LogState, th *TreeHead) error {
	r, err := rangeFactory.NewRange(st.FrontierStart, st.Position, st.Frontier)
	if err != nil {
		return fmt.Errorf("stored frontier of %s: %w", l.Description, err)
	}
	if m.Progress != nil {
		m.Progress(l, st.Position, th.Size)
	}
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan job)
	ordered := make(chan job, m.Workers*2)
	batch := c.Batch()
	g.Go(func() error {
		defer close(jobs)
		defer close(ordered)
		for pos := st.Position; pos < th.Size; {
			end := min((pos/batch+1)*batch, th.Size)
			j := job{start: pos, end: end, res: make(chan jobResult, 1)}
			select {
			case ordered <- j:
			case <-gctx.Done():
				return nil
			}
			select {
			case jobs <- j:
			case <-gctx.Done():
				return nil
			}
			pos = end
		}
		return nil
	})
	for range m.Workers {
		g.Go(func() error {
			for j := range jobs {
				j.res <- m.fetchJob(gctx, l, c, j, th.Size)
			}
			return nil
		})
	}
	g.Go(func() error {
		var pending []Finding
		uncommitted := uint64(0)
		lastCommit := time.Now()
		for j := range ordered {
			var res jobResult
			select {
			case res = <-j.res:
			case <-gctx.Done():
				return gctx.Err()
			}
			if res.err != nil {
				return res.err
			}
			for i := range res.hashes {
				if err := r.Append(res.hashes[i][:], nil); err != nil {
					return err
				}
			}
			pending = append(pending, res.findings...)
			uncommitted += j.end - j.start
			if uncommitted >= m.CommitEvery || j.end == th.Size || time.Since(lastCommit) > 2*time.Second {
				if err := m.commit(gctx, l, st, r, pending); err != nil {
					return err
				}
				m.Metrics.processed(l, uncommitted, st)
				pending, uncommitted, lastCommit = pending[:0], 0, time.Now()
				if m.Progress != nil {
					m.Progress(l, st.Position, th.Size)
				}
			}
		}
		return nil
	})
	return g.Wait()
}

// fetchJob downloads and examines the entries of one job.
func (m *Monitor) fetchJob(ctx context.Context, l *LogInfo, c Client, j job, treeSize uint64) jobResult {
	var res jobResult
	res.hashes = make([][32]byte, 0, j.end-j.start)
	for cur := j.start; cur < j.end; {
		es, err := c.Entries(ctx, cur, j.end, treeSize)
		if err != nil {
			res.err = fmt.Errorf("entries %d..%d: %w", cur, j.end, err)
			return res
		}
		for i := range es {
			e := &es[i]
			if e.Index != cur {
				res.err = fmt.Errorf("entry %d came back as %d", cur, e.Index)
				return res
			}
			res.hashes = append(res.hashes, e.LeafHash)
			res.findings = m.examine(l, e, res.findings)
			cur++
		}
	}
	return res
}

// examine parses an entry and appends a finding per matching rule.
func (m *Monitor) examine(l *LogInfo, e *Entry, out []Finding) []Finding {
	base := Finding{LogID: l.IDString(), Index: e.Index, EntryTime: msTime(e.Timestamp),
		HasPrecert: e.Type == PrecertEntry, HasCert: e.Type == X509Entry}
	var info *CertInfo
	var err error
	switch e.Type {
	case X509Entry:
		info, err = ParseCertificate(e.Cert)
	case PrecertEntry:
		info, err = ParseTBS(e.Cert)
	default:
		err = fmt.Errorf("unknown entry type %d", e.Type)
	}
	if err != nil {
		f := base
		f.Rule, f.CertKey, f.Kind, f.IssuerExpected = UnparseableRule, hexs(e.LeafHash[:]), "unparseable", false
		f.Issuer = err.Error()
		return append(out, f)
	}
	names := info.Identifiers()
	m.matcher.Match(names, func(i int) {
		rule := m.matcher.Rules[i]
		f := base
		f.Rule, f.CertKey, f.Kind = rule.Pattern, hexs(info.TBSHash[:]), "match"
		for _, n := range names {
			if Redacted(n) {
				f.Kind = "redacted"
			}
		}
		f.Names = names
		f.Issuer = info.Issuer.String()
		f.IssuerExpected = issuerExpected(info.Issuer, rule.Issuers)
		f.Serial, f.NotBefore, f.NotAfter = info.Serial, info.NotBefore, info.NotAfter
		out = append(out, f)
	})
	return out
}

// commit stores findings and the new position and frontier in one transaction.
func (m *Monitor) commit(ctx context.Context, l *LogInfo, st *LogState, r *compact.Range, fs []Finding) error {
	newFindings := 0
	err := m.Store.InTx(ctx, func(tx *store.Tx) error {
		for i := range fs {
			created, err := insertFinding(ctx, tx, &fs[i])
			if err != nil {
				return err
			}
			if created {
				newFindings++
			}
		}
		_, err := tx.Exec(ctx, `UPDATE ct_logs SET position = ?, frontier = ?, status = 'catching_up', last_error = '', updated_ms = ? WHERE log_id = ? AND position = ?`,
			int64(r.End()), joinHashes(r.Hashes()), nowMS(), l.IDString(), int64(st.Position))
		return err
	})
	if err != nil {
		return fmt.Errorf("commit %s at %d: %w", l.Description, r.End(), err)
	}
	st.Position = r.End()
	st.Frontier = append(st.Frontier[:0], r.Hashes()...)
	m.Metrics.findings(newFindings)
	if newFindings > 0 && m.Notifier != nil {
		m.Notifier.Kick()
	}
	return nil
}

func msTime(ms uint64) time.Time { return time.UnixMilli(int64(ms)).UTC() }

// findIndexByTime finds the first entry logged at or after t by binary search.
func findIndexByTime(ctx context.Context, c Client, size uint64, t time.Time) (uint64, error) {
	lo, hi := uint64(0), size
	want := uint64(t.UnixMilli())
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := c.Entries(ctx, mid, mid+1, size)
		if err != nil {
			return 0, err
		}
		if es[0].Timestamp < want {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
