package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mamori/internal/policy"
	"mamori/internal/service"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

// maxPolicyFormBytes bounds the apply form: a policy document (at most
// policy.MaxPolicySize) URL-encoded, which can triple it.
const maxPolicyFormBytes = 3*policy.MaxPolicySize + 4096

// policiesData is the Policies page: every policy at its latest version
// and, for an admin, the apply form (refilled with its errors).
type policiesData struct {
	Policies []policyRow
	Document string
	File     string
	Errors   []string
}

type policyRow struct {
	policies.View
	ExpiredExceptions int
}

func (c *Console) policiesPage(w http.ResponseWriter, r *http.Request) {
	c.renderPolicies(w, r, http.StatusOK, policiesData{})
}

func (c *Console) renderPolicies(w http.ResponseWriter, r *http.Request, status int, d policiesData) {
	vs, err := c.opt.services.Policies.List(r.Context())
	if err != nil {
		c.storeError(w, r, "policy list", err)
		return
	}
	for _, v := range vs {
		row := policyRow{View: v}
		for _, x := range v.Summary.Exceptions {
			if x.Expired {
				row.ExpiredExceptions++
			}
		}
		d.Policies = append(d.Policies, row)
	}
	p := c.newPage(r, "policies", "Policies", crumb{Label: "Policies"})
	p.Data = d
	p.Flash = policyFlash(r)
	c.render(w, r, status, "policies", p)
}

// policyApply applies the document of the form, through the same service
// as POST /api/v1/policies: the same checks, the same errors with lines.
func (c *Console) policyApply(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyFormBytes)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read (a policy is at most 1 MiB).")
		return
	}
	doc := strings.ReplaceAll(r.PostForm.Get("document"), "\r\n", "\n")
	file := strings.TrimSpace(r.PostForm.Get("file"))
	a, err := c.opt.services.Policies.Apply(r.Context(), file, []byte(doc))
	switch {
	case errors.Is(err, service.ErrInvalid):
		d := policiesData{Document: doc, File: file, Errors: strings.Split(err.Error(), "\n")}
		c.renderPolicies(w, r, http.StatusBadRequest, d)
		return
	case err != nil:
		c.storeError(w, r, "policy", err)
		return
	}
	code := "unchanged"
	switch {
	case a.Created:
		code = "created"
	case a.Changed:
		code = "updated"
	}
	redirectFlash(w, r, "/policies/"+url.PathEscape(a.Version.Policy), code)
}

// policyData is one policy's page.
type policyData struct {
	policies.View
	Name     string
	Versions []store.PolicyVersion
	// AllClusters are every cluster, for the assign form (View.Clusters are
	// those enforcing this policy).
	AllClusters []store.Cluster
	Error       string
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx := r.Context()
	var (
		v   policies.View
		err error
	)
	if vs := r.URL.Query().Get("version"); vs != "" {
		n, perr := strconv.Atoi(vs)
		if perr != nil || n < 1 {
			c.notFound(w, r, "Policy versions are numbers from 1; this one is not.")
			return
		}
		v, err = c.opt.services.Policies.GetVersion(ctx, name, n)
	} else {
		v, err = c.opt.services.Policies.Get(ctx, name)
	}
	if err != nil {
		c.storeError(w, r, "policy", err)
		return
	}
	d := policyData{View: v, Name: name}
	if d.Versions, err = c.opt.services.Policies.Versions(ctx, name); err != nil {
		c.storeError(w, r, "policy versions", err)
		return
	}
	if d.AllClusters, err = c.opt.services.Policies.Clusters(ctx); err != nil {
		c.storeError(w, r, "cluster list", err)
		return
	}
	if r.URL.Query().Get("done") == "in-use" {
		d.Error = "This policy is enforced by a cluster: assign the cluster another policy (or none) before deleting it."
	}
	p := c.newPage(r, "policies", "Policy "+name, crumb{Label: "Policies", Href: "/policies"}, crumb{Label: name})
	p.Data = d
	p.Flash = policyFlash(r)
	c.render(w, r, http.StatusOK, "policy", p)
}

func (c *Console) policyDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := c.opt.services.Policies.Delete(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrConflict):
		http.Redirect(w, r, "/policies/"+url.PathEscape(name)+"?done=in-use", http.StatusSeeOther)
		return
	case err != nil:
		c.storeError(w, r, "policy", err)
		return
	}
	redirectFlash(w, r, "/policies", "policy-deleted")
}

// policyAssign makes a cluster enforce this policy, or (remove=1) none.
func (c *Console) policyAssign(w http.ResponseWriter, r *http.Request) {
	if !c.readForm(w, r) {
		return
	}
	name := r.PathValue("name")
	id, err := strconv.ParseInt(r.PostForm.Get("cluster"), 10, 64)
	if err != nil || id <= 0 {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "Choose a cluster.")
		return
	}
	target := name
	if r.PostForm.Get("remove") != "" {
		target = ""
	}
	if _, err := c.opt.services.Policies.Assign(r.Context(), id, target); err != nil {
		c.storeError(w, r, "cluster or policy", err)
		return
	}
	code := "assigned"
	if target == "" {
		code = "unassigned"
	}
	redirectFlash(w, r, "/policies/"+url.PathEscape(name), code)
}

var policyFlashes = map[string]flash{
	"created":        {Kind: "ok", Text: "Policy created (version 1)."},
	"updated":        {Kind: "ok", Text: "Policy updated: a new version is in force."},
	"unchanged":      {Kind: "info", Text: "The document equals the latest version: nothing changed."},
	"policy-deleted": {Kind: "ok", Text: "Policy deleted, with its versions."},
	"assigned":       {Kind: "ok", Text: "The cluster now enforces this policy."},
	"unassigned":     {Kind: "ok", Text: "The cluster no longer enforces this policy."},
}

func policyFlash(r *http.Request) *flash {
	if f, ok := policyFlashes[r.URL.Query().Get("done")]; ok {
		return &f
	}
	return nil
}
