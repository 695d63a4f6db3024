package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/srekit/srekit/firmware"
	"github.com/srekit/srekit/firmware/redfish"
	"github.com/srekit/srekit/store"
)

func init() {
	group := &cobra.Command{
		Use:   "firmware",
		Short: "Firmware across the fleet: packages, versions database, inventory, staged rollouts",
		Long: `Firmware is software: package it in one format, know what runs where, and roll
it out in phases that halt on failure (after the talk "Your hardware is still
mostly software").

  packages   LVFS cabinets (.cab with metainfo.xml) or a plain directory;
             'pack' builds one that fwupd accepts, 'inspect' verifies one
  versions   fwupd's version formats (triplet, bcd, intel-me, hex, ...):
             'version' compares and explains when versions cannot be compared
  database   releases, approved targets, what every host runs: 'behind',
             'bad', 'cve', 'spread'
  inventory  from sysfs on the host, or from BMCs over Redfish
  rollouts   phases by percent and failure domain, windows, hooks, soak,
             halt on the LVFS-like rules, resume after a restart`,
	}
	group.AddCommand(fwVersionCmd(), fwPackCmd(), fwInspectCmd(), fwKeygenCmd(), fwSignCmd(), fwReleaseCmd(), fwTargetCmd(),
		fwInventoryCmd(), fwHostsCmd(), fwBehindCmd(), fwBadCmd(), fwCVECmd(), fwSpreadCmd(), fwRolloutCmd())
	root.AddCommand(group)
}

// withFwDB gives a command's RunE the versions database, opened from --db
// and closed when the command returns.
func withFwDB(run func(cmd *cobra.Command, db *firmware.DB, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		db, done, err := fwDB(cmd)
		if err != nil {
			return err
		}
		defer done()
		return run(cmd, db, args)
	}
}

func fwDB(cmd *cobra.Command) (*firmware.DB, func(), error) {
	st, err := store.Open(cmd.Context(), dbFlag)
	if err != nil {
		return nil, nil, err
	}
	return firmware.NewDB(st), func() { st.Close() }, nil
}

func fwVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version A [B]",
		Short: "Parse a firmware version (format guessed or given), or compare two",
		Long: `With one version: the format fwupd would guess, and the canonical form.
With two: which is newer, or why they cannot be compared (exit status 1).
A raw number such as 0x00010035 is decoded with the --format layout.`,
		Example: `  srekit firmware version 0x00010035 --format pair      # 1.53
  srekit firmware version 7.10.30.00 7.10.30            # equal: zero padding
  srekit firmware version 2B2QEXE7 2B2QEXE8             # cannot be compared: NVMe revisions
  srekit firmware version 11.8.50.3425 11.8.92.4222 --format intel-me`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			parse := func(s string) (firmware.Version, error) {
				if format == "" {
					return firmware.ParseGuess(s)
				}
				f, err := firmware.ParseFormat(format)
				if err != nil {
					return firmware.Version{}, usagef("--format: %v", err)
				}
				return firmware.Parse(s, f)
			}
			a, err := parse(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(args) == 1 {
				fmt.Fprintf(w, "%s\tformat %s\tcanonical %s\n", a.Raw, a.Format, a.Canonical())
				return nil
			}
			b, err := parse(args[1])
			if err != nil {
				return err
			}
			c, err := firmware.Compare(a, b)
			if err != nil {
				return err
			}
			rel := map[int]string{-1: "<", 0: "==", 1: ">"}[c]
			fmt.Fprintf(w, "%s (%s) %s %s (%s)\n", a.Raw, a.Format, rel, b.Raw, b.Format)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "version format: plain number pair triplet quad bcd intel-me intel-me2 surface-legacy surface dell-bios dell-bios-msb hex")
	return cmd
}

func fwPackCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "pack SPEC.yaml",
		Short: "Build an LVFS cabinet (payload + metainfo.xml with checksums) from a small YAML description",
		Long: `Build a cabinet (.cab, MSZIP) that fwupd and the LVFS accept: the payload and a
metainfo.xml with its sha1 and sha256 content checksums. The description:

  id: com.contoso.Bmc.firmware
  name: Contoso BMC
  developer: Contoso
  guids: [1624a9df-5e13-47fc-874a-df3aff143089]
  version_format: triplet
  protocol: org.dmtf.redfish
  payload: bmc-1.46.0.bin            # relative to the description
  release:
    version: 1.46.0
    date: 2024-03-01
    urgency: critical
    description: Fixes two IPMI vulnerabilities.
    issues: [CVE-2023-34329, "dell:DSA-2024-001"]
  requires:
    - {kind: firmware, compare: ge, version: 1.30.0}`,
		Example: `  srekit firmware pack bmc.yaml -o bmc-1.46.0.cab
  srekit firmware inspect bmc-1.46.0.cab`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			spec, err := firmware.ParsePackSpec(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			payloadPath := spec.Payload
			if !filepath.IsAbs(payloadPath) {
				payloadPath = filepath.Join(filepath.Dir(args[0]), payloadPath)
			}
			payload, err := os.ReadFile(payloadPath)
			if err != nil {
				return err
			}
			name := filepath.Base(payloadPath)
			c, err := spec.Component(name, payload)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if out == "" {
				out = strings.TrimSuffix(name, filepath.Ext(name)) + "-" + spec.Release.Version + ".cab"
			}
			var buf bytes.Buffer
			if err := firmware.Pack(&buf, c, name, payload); err != nil {
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes): %s %s\n", out, buf.Len(), c.ID, spec.Release.Version)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "cabinet to write (default PAYLOAD-VERSION.cab)")
	return cmd
}

func fwInspectCmd() *cobra.Command {
	out := outputFormat("table")
	var keys string
	var limit int64
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR",
		Short: "Read a cabinet or package directory, verify its checksums (and signature), and describe it",
		Example: `  srekit firmware inspect bmc-1.46.0.cab
  srekit firmware inspect ./bmc-image/ -o json           # the directory form: payload + *.metainfo.xml
  srekit firmware inspect bmc-1.46.0.cab --keys trusted.keys`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := firmware.OpenPackage(args[0], limit)
			if err != nil {
				return err
			}
			sig := "not checked (no --keys)"
			if keys != "" {
				f, err := os.Open(keys)
				if err != nil {
					return err
				}
				ks, err := firmware.ParseKeys(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", keys, err)
				}
				if err := p.VerifySignature(ks); err != nil {
					return err
				}
				sig = "valid (" + p.SignatureName() + ")"
			}
			c := p.Component
			if out == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"source": p.Source, "metainfo": p.Metainfo, "component": c, "signature": sig})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "package    %s (%s)\ncomponent  %s  %s\ndeveloper  %s\nformat     %s\nprotocol   %s\nprovides   %s\nchecksums  verified\nsignature  %s\n",
				p.Source, map[bool]string{true: "cabinet", false: "directory"}[p.Cabinet], c.ID, c.Name, c.Developer, c.VersionFormat, c.Protocol,
				strings.Join(c.Provides, " "), sig)
			for name, data := range p.Files {
				fmt.Fprintf(w, "file       %s (%d bytes)\n", name, len(data))
			}
			for _, r := range c.Releases {
				fmt.Fprintf(w, "release    %s  %s  urgency %s  issues %d  %s\n", r.Version, r.Date.Format("2006-01-02"), r.Urgency, len(r.Issues), strings.Join(r.CVEs(), " "))
			}
			for _, q := range c.Requires {
				fmt.Fprintf(w, "requires   %s %s %s %s\n", q.Kind, q.Value, q.Compare, q.Version)
			}
			return nil
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	cmd.Flags().StringVar(&keys, "keys", "", "file of trusted Ed25519 public keys (base64, one a line): require a valid detached signature")
	cmd.Flags().Int64Var(&limit, "max-size", firmware.DefaultPackageLimit, "largest decompressed package accepted, in bytes")
	return cmd
}

func fwKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "keygen NAME",
		Short:   "Make an Ed25519 key pair for package signatures: NAME.key (private) and NAME.pub (add it to the trusted list)",
		Example: "  srekit firmware keygen release && cat release.pub >> trusted.keys",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0]+".key", []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
				return err
			}
			return os.WriteFile(args[0]+".pub", []byte(base64.StdEncoding.EncodeToString(pub)+"\n"), 0o644)
		},
	}
}

func fwSignCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:     "sign FILE|DIR --key NAME.key",
		Short:   "Write a package's detached signature (FILE.sig, or METAINFO.sig inside a directory)",
		Example: "  srekit firmware sign bmc-1.46.0.cab --key release.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			if err != nil || len(seed) != ed25519.SeedSize {
				return fmt.Errorf("%s is not a key made by 'srekit firmware keygen'", keyFile)
			}
			p, err := firmware.OpenPackage(args[0], 0)
			if err != nil {
				return err
			}
			return os.WriteFile(p.SignatureName(), []byte(p.Sign(ed25519.NewKeyFromSeed(seed))+"\n"), 0o644)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (from keygen)")
	cmd.MarkFlagRequired("key")
	return cmd
}

func fwReleaseCmd() *cobra.Command {
	group := &cobra.Command{Use: "release", Short: "Releases in the versions database: add from packages, list, mark known-bad"}
	var comp string
	add := &cobra.Command{
		Use:   "add PACKAGE...",
		Short: "Verify packages and record their releases (with CVEs and checksums)",
		Long: `Verify each package and record its releases under a component, named
VENDOR/MODEL/KIND as inventory reports it (for a BMC read over Redfish:
Manufacturer/Name/lower-case Id, e.g. "Contoso/Contoso BMC Firmware/bmc").`,
		Example: `  srekit firmware release add bmc-1.46.0.cab --component "Contoso/Contoso BMC Firmware/bmc"`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := firmware.ParseComponentKey(comp)
			if err != nil {
				return usagef("--component: %v", err)
			}
			db, done, err := fwDB(cmd)
			if err != nil {
				return err
			}
			defer done()
			for _, a := range args {
				p, err := firmware.OpenPackage(a, 0)
				if err != nil {
					return err
				}
				if abs, err := filepath.Abs(a); err == nil {
					p.Source = abs
				}
				ids, err := db.AddPackage(cmd.Context(), p, key)
				if err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
				for i, r := range p.Component.Releases {
					fmt.Fprintf(cmd.OutOrStdout(), "release %d: %s %s\n", ids[i], key, r.Version)
				}
			}
			return nil
		},
	}
	add.Flags().StringVar(&comp, "component", "", "VENDOR/MODEL/KIND the package is for (required)")
	add.MarkFlagRequired("component")
	out := outputFormat("table")
	list := &cobra.Command{
		Use:   "list",
		Short: "List releases with their CVEs, known-bad flags and the models targeting them",
		Args:  cobra.NoArgs,
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			rs, err := db.Releases(cmd.Context())
			if err != nil {
				return err
			}
			t := table{Header: []string{"ID", "COMPONENT", "VERSION", "FORMAT", "DATE", "URGENCY", "ISSUES", "TARGET FOR", "KNOWN-BAD"}}
			for _, r := range rs {
				var is []string
				for _, i := range r.Issues {
					is = append(is, i.ID)
				}
				bad := ""
				if r.KnownBad {
					bad = "yes: " + r.BadReason
				}
				t.Rows = append(t.Rows, []string{strconv.FormatInt(r.ID, 10), r.Key.String(), r.Version, string(r.Format), r.Date, r.Urgency,
					strings.Join(is, " "), strings.Join(r.Target, " "), bad})
			}
			return t.write(cmd.OutOrStdout(), out, rs)
		}),
	}
	list.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	var reason string
	var clear bool
	bad := &cobra.Command{
		Use:     "bad ID --reason TEXT",
		Short:   "Mark a release known-bad (it can no longer be a target or rolled out), or --clear the mark",
		Example: `  srekit firmware release bad 12 --reason "bricks BMCs with bootloader < 1.30"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("release id %q is not a number", args[0])
			}
			db, done, err := fwDB(cmd)
			if err != nil {
				return err
			}
			defer done()
			return db.MarkBad(cmd.Context(), id, !clear, reason)
		},
	}
	bad.Flags().StringVar(&reason, "reason", "", "why the release is bad")
	bad.Flags().BoolVar(&clear, "clear", false, "clear the known-bad mark")
	group.AddCommand(add, list, bad)
	return group
}

func fwTargetCmd() *cobra.Command {
	var model, comp, version string
	cmd := &cobra.Command{
		Use:     "target --model MODEL --component VENDOR/MODEL/KIND --version V",
		Short:   "Approve a release as the target of a component on hosts of a model",
		Example: `  srekit firmware target --model "PowerEdge R650" --component "Contoso/Contoso BMC Firmware/bmc" --version 1.46.0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := firmware.ParseComponentKey(comp)
			if err != nil {
				return usagef("--component: %v", err)
			}
			db, done, err := fwDB(cmd)
			if err != nil {
				return err
			}
			defer done()
			return db.SetTarget(cmd.Context(), model, key, version)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "host model (as DMI product_name or the BMC list says)")
	cmd.Flags().StringVar(&comp, "component", "", "VENDOR/MODEL/KIND")
	cmd.Flags().StringVar(&version, "version", "", "release version")
	for _, f := range []string{"model", "component", "version"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func fwInventoryCmd() *cobra.Command {
	var (
		root, bmcFile, send, token, bmcCA string
		save, bmcInsecure                 bool
		out                               = outputFormat("json")
	)
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Read firmware versions from this host's sysfs, or from BMCs over Redfish; print, store or send them",
		Long: `Without --bmcs: read this host (DMI BIOS version and date, CPU microcode, NVMe
firmware revisions, NIC firmware through the ethtool ioctl) from sysfs, with
no vendor tools. With --bmcs FILE: read the FirmwareInventory of every BMC
listed (YAML: a list of {host, url, user, password, model, rack, zone}).

The result is printed (JSON), stored in the database (--store), or sent to a
srekit server (--send URL, with --token).`,
		Example: `  srekit firmware inventory                          # this host, as JSON
  srekit firmware inventory --store                  # into the local database
  srekit firmware inventory --send http://srekit:8080 --token $SREKIT_TOKEN
  srekit firmware inventory --bmcs bmcs.yaml --store`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var hosts []firmware.Host
			if bmcFile != "" {
				data, err := os.ReadFile(bmcFile)
				if err != nil {
					return err
				}
				var targets []firmware.BMCTarget
				if err := yaml.Unmarshal(data, &targets); err != nil {
					return fmt.Errorf("%s: %w", bmcFile, err)
				}
				var errs []error
				httpc, err := bmcHTTPClient(bmcCA, bmcInsecure)
				if err != nil {
					return err
				}
				hosts, errs = firmware.ReadBMCs(cmd.Context(), targets, 16, 60*time.Second, httpc)
				for _, err := range errs {
					fmt.Fprintln(os.Stderr, "srekit: "+err.Error())
				}
				if len(hosts) == 0 && len(errs) > 0 {
					return fmt.Errorf("no BMC could be read (%d errors)", len(errs))
				}
			} else {
				h, warns := firmware.Sysfs{Root: root}.Read()
				for _, w := range warns {
					fmt.Fprintln(os.Stderr, "srekit: warning: "+w)
				}
				hosts = append(hosts, h)
			}
			switch {
			case save:
				db, done, err := fwDB(cmd)
				if err != nil {
					return err
				}
				defer done()
				if err := db.Ingest(cmd.Context(), hosts); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "stored %d host(s)\n", len(hosts))
				return nil
			case send != "":
				return fwSend(cmd.Context(), send, token, hosts)
			}
			if out == "table" || out == "csv" {
				t := table{Header: []string{"HOST", "SLOT", "KIND", "VENDOR", "MODEL", "VERSION", "FORMAT", "SOURCE"}}
				for _, h := range hosts {
					for _, o := range h.Components {
						t.Rows = append(t.Rows, []string{h.Name, o.Slot, o.Kind, o.Vendor, o.Model, o.Version, string(o.Format), o.Source})
					}
				}
				return t.write(cmd.OutOrStdout(), out, hosts)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(hosts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "where /sys and /proc are (for a chroot or a copied tree)")
	f.StringVar(&bmcFile, "bmcs", "", "YAML list of BMCs to read over Redfish")
	f.StringVar(&bmcCA, "bmc-ca", "", "PEM file of the CA that signed the BMCs' certificates")
	f.BoolVar(&bmcInsecure, "bmc-insecure", false, "do not verify BMC certificates (self-signed BMCs; prefer --bmc-ca)")
	f.BoolVar(&save, "store", false, "store in the database (--db)")
	f.StringVar(&send, "send", "", "srekit server to send the inventory to")
	f.StringVar(&token, "token", os.Getenv("SREKIT_TOKEN"), "bearer token of the server (env SREKIT_TOKEN)")
	f.VarP(&out, "output", "o", "output format: json, table or csv")
	return cmd
}

func fwSend(ctx context.Context, server, token string, hosts []firmware.Host) error {
	body, _ := json.Marshal(hosts)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/api/v1/firmware/inventory", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func fwStatusTable(sts []firmware.Status) table {
	t := table{Header: []string{"HOST", "MODEL", "SLOT", "COMPONENT", "VERSION", "TARGET", "STATE", "SOURCE", "OBSERVED"}}
	for _, s := range sts {
		state := string(s.State)
		if s.Bad != "" {
			state += " (" + s.Bad + ")"
		}
		t.Rows = append(t.Rows, []string{s.Host, s.Model, s.Slot, s.Key.String(), s.Version, s.Target, state, s.Source, s.Observed.UTC().Format(time.RFC3339)})
	}
	return t
}

func fwHostsCmd() *cobra.Command {
	out := outputFormat("table")
	var host string
	cmd := &cobra.Command{
		Use:     "hosts",
		Short:   "What every host (or --host) runs, against its approved targets",
		Example: "  srekit firmware hosts --host web01",
		Args:    cobra.NoArgs,
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			sts, _, err := db.Status(cmd.Context(), firmware.Filter{Host: host})
			if err != nil {
				return err
			}
			return fwStatusTable(sts).write(cmd.OutOrStdout(), out, sts)
		}),
	}
	cmd.Flags().StringVar(&host, "host", "", "one host")
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func fwBehindCmd() *cobra.Command {
	return fwStatusQueryCmd("behind", "Hosts whose firmware is older than the approved target for their model", (*firmware.DB).Behind)
}

func fwBadCmd() *cobra.Command {
	return fwStatusQueryCmd("bad", "Hosts running a release marked known-bad", (*firmware.DB).OnKnownBad)
}

// fwStatusQueryCmd is a command that prints the host statuses one versions
// database query returns.
func fwStatusQueryCmd(use, short string, query func(*firmware.DB, context.Context) ([]firmware.Status, error)) *cobra.Command {
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			sts, err := query(db, cmd.Context())
			if err != nil {
				return err
			}
			return fwStatusTable(sts).write(cmd.OutOrStdout(), out, sts)
		}),
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func fwCVECmd() *cobra.Command {
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:     "cve CVE-ID",
		Short:   "Hosts exposed to a CVE: running a version older than the first release that fixes it",
		Example: "  srekit firmware cve CVE-2023-34329",
		Args:    cobra.ExactArgs(1),
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			as, err := db.AffectedBy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			t := table{Header: []string{"HOST", "MODEL", "SLOT", "COMPONENT", "VERSION", "FIXED IN", "CERTAIN"}}
			for _, a := range as {
				certain := "yes"
				if !a.Certain {
					certain = "no: versions do not order"
				}
				t.Rows = append(t.Rows, []string{a.Host, a.Model, a.Slot, a.Key.String(), a.Version, a.FixedIn, certain})
			}
			return t.write(cmd.OutOrStdout(), out, as)
		}),
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func fwSpreadCmd() *cobra.Command {
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:   "spread",
		Short: "Version spread: how many hosts of each model run each version of each component",
		Args:  cobra.NoArgs,
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			sp, err := db.Spread(cmd.Context())
			if err != nil {
				return err
			}
			t := table{Header: []string{"MODEL", "COMPONENT", "TARGET", "VERSION", "HOSTS", "STATE"}}
			for _, s := range sp {
				for _, v := range s.Versions {
					t.Rows = append(t.Rows, []string{s.Model, s.Key.String(), s.Target, v.Version, strconv.Itoa(v.Count), string(v.State)})
				}
			}
			return t.write(cmd.OutOrStdout(), out, sp)
		}),
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func fwRolloutCmd() *cobra.Command {
	group := &cobra.Command{Use: "rollout", Short: "Staged rollouts: plan, start, resume, list, show",
		Long: `A rollout installs one release on the hosts that need it, phase by phase
(canary first), within a concurrency limit and maintenance windows, and halts
on failure: any failure in the canary, or in a later phase at least
halt_failures (5) failures with success under halt_success (70%). A halt
marks the release known-bad. The state is in the database: 'rollout run ID'
after a crash or restart resumes without installing on any host twice.

The spec (YAML):

  name: bmc 1.46.0
  component: {vendor: Contoso, model: Contoso BMC Firmware, kind: bmc}
  version: 1.46.0
  selector: {models: [PowerEdge R650], zones: [zone-a]}
  phases: [{name: canary, percent: 1}, {percent: 10}, {percent: 50}, {percent: 100}]
  domain: rack                  # whole racks per phase; the canary in one rack
  max_concurrent: 10            # concurrency = min(10, ceil(5% x hosts) - unhealthy)
  concurrent_percent: 5
  windows: [{days: [sat, sun], start: "22:00", end: "04:00", tz: Europe/Berlin}]
  drain:   {command: [/usr/local/bin/drain, "{host}"]}
  undrain: {url: https://lb.example/undrain}
  health:  {command: [/usr/local/bin/check, "{host}"]}
  soak: 30m
  install: {method: redfish, target: BMC, stall: 15m}`}
	planCmd := &cobra.Command{
		Use:     "plan SPEC.yaml",
		Short:   "Show the phases a spec makes from the versions database, without starting anything",
		Example: "  srekit firmware rollout plan bmc-1.46.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			p, err := fwPlan(cmd, db, args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %d hosts to update, %d already there, %d ineligible\n", p.Spec.Name, p.Total, p.Skipped, len(p.Ineligible))
			for i, in := range p.Ineligible {
				if i == 10 {
					fmt.Fprintf(w, "ineligible ... (%d more)\n", len(p.Ineligible)-10)
					break
				}
				fmt.Fprintf(w, "ineligible %s (%s): %s\n", in.Host, in.Version, in.Reason)
			}
			for _, u := range p.Unchecked {
				fmt.Fprintf(w, "not checked before install: %s\n", u)
			}
			for i, ph := range p.Phases {
				names := []string{}
				for j, c := range ph {
					if j == 8 {
						names = append(names, fmt.Sprintf("... (%d more)", len(ph)-8))
						break
					}
					names = append(names, c.Host)
				}
				fmt.Fprintf(w, "phase %d %-8s %5d hosts  %s\n", i+1, p.Spec.Phases[i].Name, len(ph), strings.Join(names, " "))
			}
			return nil
		}),
	}
	var rf fwRunFlags
	start := &cobra.Command{
		Use:     "start SPEC.yaml",
		Short:   "Create a rollout from a spec and run it to the end (or a halt)",
		Example: "  srekit firmware rollout start bmc-1.46.yaml --bmc-user root --bmc-password-env BMC_PASSWORD",
		Args:    cobra.ExactArgs(1),
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			p, err := fwPlan(cmd, db, args[0])
			if err != nil {
				return err
			}
			id, err := db.CreateRollout(cmd.Context(), p)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "rollout %d created: %d hosts in %d phases; resume with 'srekit firmware rollout run %d'\n", id, p.Total, len(p.Phases), id)
			return rf.run(cmd, db, id)
		}),
	}
	rf.flags(start)
	var rf2 fwRunFlags
	run := &cobra.Command{
		Use:     "run ID",
		Short:   "Resume a rollout (after a restart): follows in-flight installs, never installs twice",
		Example: "  srekit firmware rollout run 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("rollout id %q is not a number", args[0])
			}
			db, done, err := fwDB(cmd)
			if err != nil {
				return err
			}
			defer done()
			return rf2.run(cmd, db, id)
		},
	}
	rf2.flags(run)
	out := outputFormat("table")
	list := &cobra.Command{
		Use:   "list",
		Short: "List rollouts with their state and progress",
		Args:  cobra.NoArgs,
		RunE: withFwDB(func(cmd *cobra.Command, db *firmware.DB, args []string) error {
			rs, err := db.Rollouts(cmd.Context())
			if err != nil {
				return err
			}
			t := table{Header: []string{"ID", "NAME", "STATE", "PHASE", "DONE", "FAILED", "LEFT ALONE", "PENDING", "HALT REASON"}}
			for _, r := range rs {
				d, f, in, p := 0, 0, 0, 0
				for _, c := range r.Counts {
					d, f, in, p = d+c[firmware.HostDone], f+c[firmware.HostFailed], in+c[firmware.HostInterrupted]+c[firmware.HostUnhealthy], p+c[firmware.HostPending]+c[firmware.HostStarted]
				}
				t.Rows = append(t.Rows, []string{strconv.FormatInt(r.ID, 10), r.Name, r.State, fmt.Sprintf("%d/%d", r.Phase+1, len(r.Counts)),
					strconv.Itoa(d), strconv.Itoa(f), strconv.Itoa(in), strconv.Itoa(p), r.HaltReason})
			}
			return t.write(cmd.OutOrStdout(), out, rs)
		}),
	}
	list.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	out2 := outputFormat("table")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Every host of a rollout with its phase and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("rollout id %q is not a number", args[0])
			}
			db, done, err := fwDB(cmd)
			if err != nil {
				return err
			}
			defer done()
			hs, err := db.RolloutHosts(cmd.Context(), id)
			if err != nil {
				return err
			}
			t := table{Header: []string{"PHASE", "HOST", "STATE", "DETAIL"}}
			for _, h := range hs {
				t.Rows = append(t.Rows, []string{strconv.Itoa(h.Phase + 1), h.Host, h.State, h.Detail})
			}
			return t.write(cmd.OutOrStdout(), out2, hs)
		},
	}
	show.Flags().VarP(&out2, "output", "o", "output format: table, json or csv")
	group.AddCommand(planCmd, start, run, list, show)
	return group
}

func fwPlan(cmd *cobra.Command, db *firmware.DB, path string) (*firmware.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	spec, err := firmware.ParseRolloutSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return db.PlanRollout(cmd.Context(), *spec)
}

type fwRunFlags struct {
	user, passwordEnv, ca string
	insecure              bool
	allow                 []string
}

// bmcHTTPClient is the HTTP client for BMCs: their certificates are often
// signed by a private CA (--bmc-ca) or self-signed (--bmc-insecure).
func bmcHTTPClient(caFile string, insecure bool) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, nil
}

func (f *fwRunFlags) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.user, "bmc-user", os.Getenv("SREKIT_BMC_USER"), "BMC user name (env SREKIT_BMC_USER)")
	cmd.Flags().StringVar(&f.passwordEnv, "bmc-password-env", "SREKIT_BMC_PASSWORD", "environment variable holding the BMC password")
	cmd.Flags().StringSliceVar(&f.allow, "allow", nil, "programs a command install may run (e.g. --allow ssh)")
	cmd.Flags().StringVar(&f.ca, "bmc-ca", "", "PEM file of the CA that signed the BMCs' certificates")
	cmd.Flags().BoolVar(&f.insecure, "bmc-insecure", false, "do not verify BMC certificates (self-signed BMCs; prefer --bmc-ca)")
}

func (f *fwRunFlags) run(cmd *cobra.Command, db *firmware.DB, id int64) error {
	ctx := cmd.Context()
	ro, err := db.Rollout(ctx, id)
	if err != nil {
		return err
	}
	rel, err := db.Release(ctx, ro.ReleaseID)
	if err != nil {
		return err
	}
	if rel.Package == "" {
		return fmt.Errorf("release %s has no package on record: add it with 'srekit firmware release add'", rel.Version)
	}
	pkg, err := firmware.OpenPackage(rel.Package, 0)
	if err != nil {
		return fmt.Errorf("package of release %s: %w", rel.Version, err)
	}
	name, payload, err := pkg.Payload()
	if err != nil {
		return err
	}
	spec := ro.Record.Spec
	var inst firmware.Installer
	switch spec.Install.Method {
	case "command":
		dir, err := os.MkdirTemp("", "srekit-firmware-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		pp := filepath.Join(dir, name)
		if err := os.WriteFile(pp, payload, 0o600); err != nil {
			return err
		}
		inst = &firmware.CommandInstaller{Command: spec.Install.Command, VersionCommand: spec.Install.VersionCommand, Allowed: f.allow,
			PayloadPath: pp, TargetVersion: rel.Version}
	default:
		pw := os.Getenv(f.passwordEnv)
		httpc, err := bmcHTTPClient(f.ca, f.insecure)
		if err != nil {
			return err
		}
		inst = &firmware.RedfishInstaller{Target: spec.Install.Target, Filename: name, Payload: payload,
			SimpleUpdate: spec.Install.SimpleUpdate, ImageURL: spec.Install.ImageURL,
			Wait: redfish.WaitOptions{Poll: spec.Install.Poll.D(), Stall: spec.Install.Stall.D()},
			Client: func(bmc string) *redfish.Client {
				return &redfish.Client{BaseURL: bmc, User: f.user, Password: pw, HTTP: httpc}
			}}
	}
	c := &firmware.Controller{DB: db, Installer: inst, Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))}
	err = c.Run(ctx, id)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("rollout %d stopped; resume with 'srekit firmware rollout run %d'", id, id)
	}
	return err
}
