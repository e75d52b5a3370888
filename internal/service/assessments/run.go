package assessments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"mamori/internal/compliance"
	"mamori/internal/store"
)

// Kick asks the loop to re-assess soon (a posture or an explicit request);
// it never blocks.
func (s *Service) Kick(cause string) {
	select {
	case s.kick <- cause:
	default:
	}
}

// Run re-assesses every standard on the schedule and whenever the evidence
// changes (a scan, a policy or its assignment, an admission decision, a
// posture, a probe, a signature verification, a registry, the vulnerability
// database), until ctx ends. Each re-assessment stores a snapshot when the
// outcome changed.
func (s *Service) Run(ctx context.Context) {
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	last := time.Time{}
	for {
		if _, err := s.CheckRegistries(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Warn("compliance: registry checks", "err", err)
		}
		cause := ""
		if time.Since(last) >= s.cfg.Schedule {
			cause = "schedule"
		} else if c, err := s.changed(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("compliance: evidence stamp", "err", err)
		} else {
			cause = c
		}
		if cause != "" {
			if _, err := s.Reassess(ctx, cause); err != nil && ctx.Err() == nil {
				s.log.Error("compliance re-assessment", "cause", cause, "err", err)
			}
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case c := <-s.kick:
			if _, err := s.Reassess(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Error("compliance re-assessment", "cause", c, "err", err)
			}
		case <-poll.C:
		}
	}
}

// stamp is the evidence stamp with the vulnerability database's.
func (s *Service) stamp(ctx context.Context) (map[string]int64, error) {
	st, err := s.st.EvidenceStamp(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.Matcher != nil {
		st["vulnDB"] = s.cfg.Matcher.DBInfo(ctx).BuiltAt.UnixMicro()
	}
	st["rematch"] = s.cfg.Images.MatchedDB(ctx).UnixMicro()
	return st, nil
}

// causes name the stamp parts as a re-assessment's cause.
var causes = map[string]string{
	store.StampScans: "scan", store.StampImages: "scan", store.StampPolicies: "policy", store.StampPolicyCount: "policy",
	store.StampAssignments: "policy", store.StampAdmission: "admission", store.StampNodePostures: "node posture",
	store.StampHostMatches: "host match", store.StampClusterPostures: "cluster posture", store.StampProbes: "registry probe",
	store.StampSignatures: "signature", store.StampRegistries: "registry", "vulnDB": "vulnerability database",
	"rematch": "vulnerability database",
}

// changed compares the stamp with the last re-assessment's and names what
// changed ("" for nothing).
func (s *Service) changed(ctx context.Context) (string, error) {
	st, err := s.stamp(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	last := s.lastStamp
	s.mu.Unlock()
	if last == nil {
		return "start", nil
	}
	seen := map[string]bool{}
	var out []string
	for k, v := range st {
		if last[k] != v && !seen[causes[k]] {
			seen[causes[k]] = true
			out = append(out, causes[k])
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", "), nil
}

// Snapshot is one stored assessment.
type Snapshot struct {
	ID          int64
	Standard    string
	GeneratedAt time.Time
	Cause       string
	Summary     compliance.Summary
	Groups      []compliance.Summary
	// Stored is false when the outcome equalled the previous snapshot's
	// (and a day had not passed): nothing new was stored.
	Stored bool
}

// Reassess assesses every standard now and stores a snapshot of each whose
// outcome changed (or whose last snapshot is a day old).
func (s *Service) Reassess(ctx context.Context, cause string) ([]Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stamp(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance re-assessment: %w", err)
	}
	ev, err := s.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, std := range Standards {
		r, err := s.assess(ev, std)
		if err != nil {
			return nil, err
		}
		snap, err := s.store(ctx, r, cause)
		if err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	s.lastStamp = st
	return out, nil
}

// outcomeDigest identifies a report's outcome: every control's status,
// reason and evidence, without the generation time.
func outcomeDigest(r *compliance.Report) (string, error) {
	h := sha256.New()
	b, err := json.Marshal(r.Controls)
	if err != nil {
		return "", err
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *Service) store(ctx context.Context, r *compliance.Report, cause string) (Snapshot, error) {
	snap := Snapshot{Standard: r.Standard, GeneratedAt: r.GeneratedAt, Cause: cause, Summary: r.Summary, Groups: r.Groups}
	dg, err := outcomeDigest(r)
	if err != nil {
		return snap, fmt.Errorf("compliance snapshot: %w", err)
	}
	prev, err := s.st.LatestAssessment(ctx, r.Standard)
	switch {
	case err == nil && prev.Digest == dg && r.GeneratedAt.Sub(prev.GeneratedAt) < snapshotEvery:
		snap.ID = prev.ID
		return snap, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return snap, fmt.Errorf("compliance snapshot: %w", err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return snap, fmt.Errorf("compliance snapshot: %w", err)
	}
	groups, err := json.Marshal(r.Groups)
	if err != nil {
		return snap, fmt.Errorf("compliance snapshot: %w", err)
	}
	id, err := s.st.AddAssessment(ctx, store.Assessment{Standard: r.Standard, GeneratedAt: r.GeneratedAt, Cause: truncate(cause),
		Pass: r.Summary.Pass, Fail: r.Summary.Fail, NotApplicable: r.Summary.NotApplicable, NotAssessed: r.Summary.NotAssessed,
		Groups: string(groups), Digest: dg, Report: string(body)}, s.cfg.Keep)
	if err != nil {
		return snap, fmt.Errorf("compliance snapshot: %w", err)
	}
	snap.ID, snap.Stored = id, true
	s.log.Info("compliance assessed", "standard", r.Standard, "cause", cause, "pass", r.Summary.Pass, "fail", r.Summary.Fail,
		"notAssessed", r.Summary.NotAssessed, "snapshot", id)
	return snap, nil
}

// History lists a standard's snapshots, newest first (at most limit).
func (s *Service) History(ctx context.Context, standard string, limit int) ([]Snapshot, error) {
	standard, err := CheckStandard(standard)
	if err != nil {
		return nil, err
	}
	rows, err := s.st.Assessments(ctx, standard, limit)
	if err != nil {
		return nil, fmt.Errorf("compliance history: %w", err)
	}
	out := make([]Snapshot, 0, len(rows))
	for _, a := range rows {
		sn := Snapshot{ID: a.ID, Standard: a.Standard, GeneratedAt: a.GeneratedAt, Cause: a.Cause, Stored: true,
			Summary: summaryOf(a.Pass, a.Fail, a.NotApplicable, a.NotAssessed)}
		if err := json.Unmarshal([]byte(a.Groups), &sn.Groups); err != nil {
			return nil, fmt.Errorf("compliance history: snapshot %d: %w", a.ID, err)
		}
		out = append(out, sn)
	}
	return out, nil
}

func summaryOf(pass, fail, na, nas int) compliance.Summary {
	s := compliance.Summary{Pass: pass, Fail: fail, NotApplicable: na, NotAssessed: nas, Score: -1}
	if pass+fail > 0 {
		s.Score = float64(pass) * 100 / float64(pass+fail)
	}
	return s
}

// SnapshotReport returns a stored snapshot's report.
func (s *Service) SnapshotReport(ctx context.Context, id int64) (*compliance.Report, error) {
	a, err := s.st.GetAssessment(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("compliance snapshot: %w", err)
	}
	var r compliance.Report
	if err := json.Unmarshal([]byte(a.Report), &r); err != nil {
		return nil, fmt.Errorf("compliance snapshot %d: %w", id, err)
	}
	return &r, nil
}
