package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/policies"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/console"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
	"github.com/parcours-sante/parcours/server/telemetry"
)

// DefaultMaxIngest is the default limit of a native file sent to $ingest.
const DefaultMaxIngest = 16 << 30

// Config is what cmd/parcours hands to New.
type Config struct {
	// DataDir holds parcours.db (created if needed).
	DataDir string
	// BaseURL is the public FHIR base (e.g. https://hub.example.org/fhir);
	// empty: derived from each request's Host.
	BaseURL string
	// MaxBody caps request bodies in bytes (413 above), native files to
	// $ingest excepted.
	MaxBody int64
	// MaxIngest caps a native file sent to $ingest (413 above). Such a
	// file is spooled to the data directory and streamed, never held in
	// memory, so its limit is the disk's, not the heap's.
	MaxIngest int64
	// Dev enables the developer conveniences of `serve --dev`.
	Dev bool
	// Version is the software version shown in the CapabilityStatement.
	Version string
	Logger  *slog.Logger

	// Token verification: issuer, audience and a JWKS file of RS256/ES256
	// keys. In Dev mode the HS256 key of the data directory is accepted too
	// (and Issuer/Audience default to the dev ones).
	Issuer, Audience, JWKSFile string
	// Policies are the Rego files and data (default: the embedded policies).
	Policies fs.FS
	// Insecure turns authentication and policy off. For the foundation's
	// tests and for measuring the cost of the policy only; no command line
	// flag sets it.
	Insecure bool
	// NoAudit decides without recording: for measuring the cost of the
	// audit log only; no command line flag sets it.
	NoAudit bool
	// Telemetry tunes traces; the zero value follows the OTEL_*
	// environment variables (see package telemetry).
	Telemetry telemetry.Options
}

// Server is a running Parcours hub (without its listener).
type Server struct {
	allow     map[string][]string // route → methods served, for the Allow header of a 405 (routes)
	cfg       Config
	db        *store.DB
	validator *conformance.Validator
	verifier  *auth.Verifier // nil when Insecure
	policy    *policy.Engine
	audit     *audit.Log
	keys      *keyring
	// pseudonyms memoises patient pseudonyms by domain and id (with the
	// version they are of), bounded.
	pseudonyms pseudonymMemo
	// dirty: patients whose EpisodeOfCares need recomputing (episodes.go).
	dirty *dirtySet
	// authz memoises what decisions are built from (authz_cache.go).
	authz authzMemo
	// measureRows memoises the rows of rupture measures (measures.go).
	measureRows rowsMemo
	tel         *telemetry.Telemetry
	echo        *echo.Echo
	log         *slog.Logger
	capJSON     []byte
}

// New opens the store and builds the HTTP handler.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 20
	}
	if cfg.MaxIngest <= 0 {
		cfg.MaxIngest = DefaultMaxIngest
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	// Records logged with a request's context carry its trace and span ids.
	cfg.Logger = slog.New(telemetry.LogHandler(cfg.Logger.Handler()))
	if cfg.Telemetry.ServiceVersion == "" {
		cfg.Telemetry.ServiceVersion = cfg.Version
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	keys, err := loadKeyring(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	dirty := newDirtySet()
	index := Indexer(cfg.BaseURL)
	db, err := store.Open(filepath.Join(cfg.DataDir, "parcours.db"), store.Options{
		Indexer:       trackPathways(dirty, index, false),
		CreateIndexer: trackPathways(dirty, index, true),
		Stamp:         Stamp(), Removed: dirty.removed,
	})
	if err != nil {
		return nil, err
	}
	v, err := conformance.Shared()
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, validator: v, log: cfg.Logger, dirty: dirty, keys: keys}
	// The OpenTelemetry SDK's own complaints (an unsupported sampler…) go
	// to the hub's JSON log, not to the standard logger's plain text.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		cfg.Logger.Error("opentelemetry", "error", err.Error())
	}))
	if s.tel, err = telemetry.New(cfg.Telemetry); err != nil {
		db.Close()
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if err := s.security(); err != nil {
		s.Close()
		return nil, err
	}
	s.onCommit()
	if s.capJSON, err = capabilityStatement(cfg.Version, !cfg.Insecure); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.storeVocabulary(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("store the pathway vocabulary: %w", err)
	}
	if err := s.storeRules(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("store the rupture rules: %w", err)
	}
	if err := s.storeMeasures(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("store the measures: %w", err)
	}
	go s.episodeWorker()
	s.echo = s.routes()
	return s, nil
}

// security loads the token verifier and the policy engine.
func (s *Server) security() error {
	var err error
	if s.cfg.Insecure {
		return nil
	}
	ac := auth.Config{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, JWKSFile: s.cfg.JWKSFile}
	if s.cfg.Dev {
		if ac.DevSecret, err = auth.DevSecret(s.cfg.DataDir, true); err != nil {
			return err
		}
		if ac.Issuer == "" {
			ac.Issuer = auth.DevIssuer
		}
		if ac.Audience == "" {
			ac.Audience = auth.DevAudience
		}
	}
	if s.verifier, err = auth.NewVerifier(ac); err != nil {
		return err
	}
	fsys := s.cfg.Policies
	if fsys == nil {
		fsys = policies.FS
	}
	if s.policy, err = policy.New(context.Background(), fsys); err != nil {
		return err
	}
	// Decision records go through a journal beside the store file
	// (audit.wal): one fdatasync per group of requests, then the chain.
	ctx := context.Background()
	opt := audit.Options{OnGroup: func(records int) { s.tel.AuditBatch.Record(ctx, int64(records)) }}
	if s.audit, err = audit.Open(s.db, filepath.Join(s.cfg.DataDir, "audit.wal"), opt); err != nil {
		return err
	}
	// Every policy revision ever loaded is kept, by hash, for replay.
	return s.audit.SaveRevision(context.Background(), s.policy.Revision(), s.policy.Sources())
}

// Handler is the hub's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// DB is the resource store (for commands such as reindex).
func (s *Server) DB() *store.DB { return s.db }

// Close flushes pending writes and closes the store, then flushes pending
// spans to the trace exporters (waiting at most 5 s for them).
func (s *Server) Close() error {
	s.dirty.stop()
	var err error
	if s.audit != nil {
		err = s.audit.Close() // before the store: the journal's last records go there
	}
	err = errors.Join(err, s.db.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, s.tel.Shutdown(ctx))
}

// onCommit records the size of every group commit: the write functions it
// acknowledged and, with an audit log, the decision records it made
// durable (the growth of the chain's head since the previous commit, read
// on the committer once the commit is done).
func (s *Server) onCommit() {
	ctx := context.Background()
	s.db.OnCommit(func(writes int) { s.tel.CommitBatch.Record(ctx, int64(writes)) })
}

// Shutdown stops an echo-managed listener, if any.
func (s *Server) Shutdown(ctx context.Context) error { return s.echo.Shutdown(ctx) }

const ctxContentType = "parcours.contentType"

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	s.echo = e
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.observe, requestID, s.recoverPanics)

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/metrics", echo.WrapHandler(s.tel.Handler()))
	// The auditor console: a static page; its data comes from the audited
	// FHIR API with the auditor's token.
	e.GET("/audit", echo.WrapHandler(console.Handler()))
	e.GET("/audit/*", echo.WrapHandler(console.Handler()))
	e.HEAD("/audit/*", echo.WrapHandler(console.Handler()))

	// Routes carry the FHIR middleware one by one: an echo Group with
	// middleware would add a catch-all that turns 405 into 404.
	// allow keeps, per route, the methods served (not refused with a 405
	// of ours): the Allow header of a 405 (errorHandler).
	s.allow = map[string][]string{}
	served := func(method, path string) {
		if !slices.Contains(s.allow[path], method) {
			s.allow[path] = append(s.allow[path], method)
			slices.Sort(s.allow[path])
		}
	}
	public := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/fhir"+path, h, s.fhirHeaders)
		served(method, "/fhir"+path)
	}
	public(http.MethodGet, "/metadata", s.metadata)
	public(http.MethodHead, "/metadata", s.metadata)
	// Authentication comes first, so that a request refused for its
	// format (406) is recorded and names its record like any other.
	refuse := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/fhir"+path, h, s.authenticate, s.fhirHeaders)
	}
	fhir := func(method, path string, h echo.HandlerFunc) {
		refuse(method, path, h)
		served(method, "/fhir"+path)
	}
	// PATCH is not supported: 405, decided and recorded (echo's own 405
	// would pass by the audit); nor OPTIONS (echo answered it 204 without
	// a token: black-box review).
	for _, p := range []string{"", "/:type", "/:type/:id"} {
		refuse(http.MethodPatch, p, func(echo.Context) error {
			return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "PATCH is not supported: send the whole resource with PUT")
		})
	}
	for _, p := range []string{"", "/", "/*"} {
		refuse(http.MethodOptions, p, func(echo.Context) error {
			return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "OPTIONS is not supported: GET /fhir/metadata describes the server")
		})
	}
	fhir(http.MethodPost, "/$ingest", s.ingest)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		refuse(m, "/$ingest", func(echo.Context) error {
			return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "$ingest is invoked with POST")
		})
	}
	fhir(http.MethodGet, "/AuditEvent", s.auditEvents)
	fhir(http.MethodGet, "/AuditEvent/:id", s.auditEvent)
	fhir(http.MethodHead, "/AuditEvent/:id", s.auditEvent) // not the generic read of /:type/:id
	fhir(http.MethodGet, "/$audit-verify", s.auditVerify)
	fhir(http.MethodPost, "/AuditEvent/:id/$review", s.auditReview)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		// The audit log is append-only and written by the hub alone.
		refuse(m, "/AuditEvent", readOnlyAudit)
		refuse(m, "/AuditEvent/:id", readOnlyAudit)
	}
	for _, p := range []string{"/AuditEvent/_history", "/AuditEvent/:id/_history", "/AuditEvent/:id/_history/:vid"} {
		refuse(http.MethodGet, p, func(echo.Context) error {
			return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "AuditEvents have no history: a record is never changed (search them by date)")
		})
	}
	fhir(http.MethodGet, "/ConceptMap/$translate", s.translate)
	fhir(http.MethodPost, "/ConceptMap/$translate", s.translate)
	fhir(http.MethodGet, "/ConceptMap/:id/$translate", s.translate)
	fhir(http.MethodPost, "/ConceptMap/:id/$translate", s.translate)
	fhir(http.MethodPost, "", s.bundle)
	fhir(http.MethodPost, "/", s.bundle)
	fhir(http.MethodGet, "/_history", s.history)
	s.searchRoutes(fhir)
	s.pathwayRoutes(fhir)
	fhir(http.MethodGet, "/:type", s.search)
	fhir(http.MethodPost, "/:type/_search", s.search)
	fhir(http.MethodPost, "/:type", s.createHandler)
	fhir(http.MethodPut, "/:type", s.updateHandler)
	fhir(http.MethodDelete, "/:type", s.deleteHandler)
	fhir(http.MethodGet, "/:type/_history", s.history)
	fhir(http.MethodGet, "/:type/:id", s.readHandler)
	fhir(http.MethodHead, "/:type/:id", s.readHandler)
	fhir(http.MethodPut, "/:type/:id", s.updateHandler)
	fhir(http.MethodDelete, "/:type/:id", s.deleteHandler)
	fhir(http.MethodGet, "/:type/:id/_history", s.history)
	fhir(http.MethodGet, "/:type/:id/_history/:vid", s.vreadHandler)
	fhir(http.MethodHead, "/:type/:id/_history/:vid", s.vreadHandler)
	return e
}

// requestID sets X-Request-Id on every answer (the caller's, or a new one:
// a random per-process prefix and a counter, unique without a syscall).
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = requestPrefix + strconv.FormatUint(requestSeq.Add(1), 36)
		}
		c.Response().Header()["X-Request-Id"] = []string{id}
		return next(c)
	}
}

var (
	requestSeq    atomic.Uint64
	requestPrefix = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]) + "-"
	}()
)

func readOnlyAudit(echo.Context) error {
	return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "AuditEvents are written by the hub only")
}

// fhirHeaders negotiates the response format before any work is done.
func (s *Server) fhirHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ct, err := negotiate(c.Request())
		if err != nil {
			return err
		}
		c.Set(ctxContentType, ct)
		if raw := c.Request().URL.RawQuery; raw != "" { // a read by id has none: no parse, no map
			if _, err := checkQuery(raw, ""); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// base is the FHIR base URL for absolute links.
func (s *Server) base(c echo.Context) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	return c.Scheme() + "://" + c.Request().Host + "/fhir"
}
