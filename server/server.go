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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

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

// Config is what cmd/parcours hands to New.
type Config struct {
	// DataDir holds parcours.db (created if needed).
	DataDir string
	// BaseURL is the public FHIR base (e.g. https://hub.example.org/fhir);
	// empty: derived from each request's Host.
	BaseURL string
	// MaxBody caps request bodies in bytes (413 above).
	MaxBody int64
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
}

// Server is a running Parcours hub (without its listener).
type Server struct {
	cfg       Config
	db        *store.DB
	validator *conformance.Validator
	verifier  *auth.Verifier // nil when Insecure
	policy    *policy.Engine
	audit     *audit.Log
	keys      *keyring
	// pseudonyms memoises patient pseudonyms by domain, id and version.
	pseudonyms sync.Map
	tel        *telemetry.Telemetry
	echo       *echo.Echo
	log        *slog.Logger
	capJSON    []byte
}

// New opens the store and builds the HTTP handler.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "parcours.db"), store.Options{Indexer: Indexer(cfg.BaseURL)})
	if err != nil {
		return nil, err
	}
	v, err := conformance.Shared()
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, validator: v, log: cfg.Logger}
	if s.tel, err = telemetry.New(); err != nil {
		db.Close()
		return nil, err
	}
	db.OnCommit(func(writes int) { s.tel.CommitBatch.Record(context.Background(), int64(writes)) })
	if err := s.security(); err != nil {
		db.Close()
		return nil, err
	}
	if s.capJSON, err = capabilityStatement(cfg.Version, !cfg.Insecure); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.storeVocabulary(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store the pathway vocabulary: %w", err)
	}
	s.echo = s.routes()
	return s, nil
}

// security loads the token verifier, the policy engine and the keys.
func (s *Server) security() error {
	var err error
	if s.keys, err = loadKeyring(s.cfg.DataDir); err != nil {
		return err
	}
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
	// Every policy revision ever loaded is kept, by hash, for replay.
	s.audit = audit.New(s.db)
	return s.audit.SaveRevision(context.Background(), s.policy.Revision(), s.policy.Sources())
}

// Handler is the hub's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// DB is the resource store (for commands such as reindex).
func (s *Server) DB() *store.DB { return s.db }

// Close flushes pending writes and closes the store.
func (s *Server) Close() error { return s.db.Close() }

// Shutdown stops an echo-managed listener, if any.
func (s *Server) Shutdown(ctx context.Context) error { return s.echo.Shutdown(ctx) }

const ctxContentType = "parcours.contentType"

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(requestID, s.measure)

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/metrics", echo.WrapHandler(s.tel.Handler()))
	// The auditor console: a static page; its data comes from the audited
	// FHIR API with the auditor's token.
	e.GET("/audit", echo.WrapHandler(console.Handler()))
	e.GET("/audit/*", echo.WrapHandler(console.Handler()))
	e.HEAD("/audit/*", echo.WrapHandler(console.Handler()))

	// Routes carry the FHIR middleware one by one: an echo Group with
	// middleware would add a catch-all that turns 405 into 404.
	public := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/fhir"+path, h, s.fhirHeaders)
	}
	public(http.MethodGet, "/metadata", s.metadata)
	public(http.MethodHead, "/metadata", s.metadata)
	fhir := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/fhir"+path, h, s.fhirHeaders, s.authenticate)
	}
	fhir(http.MethodPost, "/$ingest", s.ingest)
	fhir(http.MethodGet, "/AuditEvent", s.auditEvents)
	fhir(http.MethodGet, "/AuditEvent/:id", s.auditEvent)
	fhir(http.MethodGet, "/$audit-verify", s.auditVerify)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		// The audit log is append-only and written by the hub alone.
		fhir(m, "/AuditEvent", readOnlyAudit)
		fhir(m, "/AuditEvent/:id", readOnlyAudit)
	}
	fhir(http.MethodGet, "/ConceptMap/$translate", s.translate)
	fhir(http.MethodPost, "/ConceptMap/$translate", s.translate)
	fhir(http.MethodPost, "", s.bundle)
	fhir(http.MethodPost, "/", s.bundle)
	fhir(http.MethodGet, "/_history", s.history)
	s.searchRoutes(fhir)
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

// measure records request counts and latency by route template (never the
// concrete path: it may carry identifiers).
func (s *Server) measure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = outcome.StatusOf(err)
			var he *echo.HTTPError
			if errors.As(err, &he) {
				status = he.Code
			}
		}
		route, method := c.Path(), c.Request().Method
		if route == "" {
			route = "unmatched"
		}
		ctx := c.Request().Context()
		s.tel.Requests.Add(ctx, 1, telemetry.Attrs("route", route, "method", method, "status", strconv.Itoa(status)))
		s.tel.Latency.Record(ctx, time.Since(start).Seconds(), telemetry.Attrs("route", route, "method", method))
		return err
	}
}

// fhirHeaders negotiates the response format before any work is done.
func (s *Server) fhirHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ct, err := negotiate(c.Request())
		if err != nil {
			return err
		}
		c.Set(ctxContentType, ct)
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
