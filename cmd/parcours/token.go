package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parcours-sante/parcours/server/auth"
)

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		data, actor, sub, purposes, org, rpps, patient, careTeam string
		ttl                                                      time.Duration
	)
	fs := newFlags("token --data DIR --actor TYPE --sub ID --purposes P1,P2 [flags]", "Mint a token with the developer key of a data directory (created by `parcours serve --dev`).", stderr)
	fs.StringVar(&data, "data", "./data", "data directory of a --dev hub")
	fs.StringVar(&actor, "actor", "", "actor type: "+strings.Join(auth.ActorTypes, ", "))
	fs.StringVar(&sub, "sub", "", "subject (user id)")
	fs.StringVar(&purposes, "purposes", "", "comma-separated purposes of use the client may use")
	fs.StringVar(&org, "org", "", "organisation identifier, system|value (FINESS, SIREN…)")
	fs.StringVar(&rpps, "rpps", "", "RPPS number of a health professional")
	fs.StringVar(&patient, "patient", "", "Patient/<id> for a patient actor")
	fs.StringVar(&careTeam, "care-team", "", "comma-separated CareTeam/<id> the user belongs to")
	fs.DurationVar(&ttl, "ttl", time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !auth.IsActorType(actor) || sub == "" || purposes == "" {
		fmt.Fprintln(stderr, "parcours token: --actor (a known actor type), --sub and --purposes are required")
		fs.Usage()
		return exitError(2)
	}
	secret, err := auth.DevSecret(data, false)
	if err != nil {
		return err
	}
	c := auth.Claims{ActorType: actor, Org: org, RPPS: rpps, Patient: patient, Purposes: split(purposes), CareTeams: split(careTeam),
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}
	t, err := auth.Mint(secret, c, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, t)
	return nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
