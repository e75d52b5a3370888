package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/service/runtimerules"
)

// rulesetsData is the Runtime rulesets page: the built-in rule catalogue
// and, per policy, which rules its rulesets enable with which action.
type rulesetsData struct {
	Form  url.Values
	Rules []rulesetRow
	// Total is the number of rules in the catalogue (Rules may be filtered).
	Total    int
	Filtered bool
	// Columns are the ruleset references of every policy, policy by policy.
	Columns []rulesetColumn
	// Policies are the policies' headers over Columns (one per policy
	// with a runtime section).
	Policies []policyHead
	// Without lists the policies with no runtime ruleset (their agents run
	// no runtime rule); Unparsed those this server cannot read.
	Without  []string
	Unparsed []runtimerules.PolicyRulesets
	// Groups are the host groups with the policy each member runs.
	Groups []runtimerules.HostGroupView
	Error  string
}

type policyHead struct {
	Name     string
	Version  int
	Clusters []string
	Span     int
}

type rulesetColumn struct {
	Policy string
	runtimerules.RulesetView
}

// rulesetRow is one rule with its cell in each column.
type rulesetRow struct {
	runtimerules.Rule
	Cells []rulesetCell
}

// rulesetCell is a rule's action in one ruleset reference: "" when off,
// or unknown when the ruleset is not built in and the policy does not name
// the rule (the agents resolve it from their own rule files).
type rulesetCell struct {
	Action  model.Action
	Unknown bool
}

// rulesetsPage shows the built-in runtime rules (ID, title, severity,
// ATT&CK tactic and technique, event kinds, condition, default action) and
// the action each policy's runtime rulesets give them. It is read-only:
// rulesets are part of their policy, edited by applying the policy (the
// Policies page).
func (c *Console) rulesetsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := rulesetsData{Form: q}
	status := http.StatusOK
	err := func() error {
		query := strings.ToLower(textParam(q.Get("q")))
		tactic := strings.ToUpper(strings.TrimSpace(q.Get("tactic")))
		technique := strings.ToUpper(strings.TrimSpace(q.Get("technique")))
		if tactic != "" && !attackTacticRE.MatchString(tactic) {
			return service.Invalid("tactic %q: want an ATT&CK tactic ID (TA0002)", truncateText(tactic))
		}
		if technique != "" && !attackTechniqueRE.MatchString(technique) {
			return service.Invalid("technique %q: want an ATT&CK technique ID (T1059 or T1059.004)", truncateText(technique))
		}
		d.Filtered = query != "" || tactic != "" || technique != ""
		catalog, err := c.opt.services.RuntimeRules.Rules(r.Context())
		if err != nil {
			return err
		}
		pols, err := c.opt.services.RuntimeRules.PolicyRulesets(r.Context())
		if err != nil {
			return err
		}
		for _, p := range pols {
			switch {
			case p.ParseError != "":
				d.Unparsed = append(d.Unparsed, p)
			case len(p.Rulesets) == 0:
				d.Without = append(d.Without, p.Policy)
			default:
				d.Policies = append(d.Policies, policyHead{Name: p.Policy, Version: p.Version, Clusters: p.Clusters, Span: len(p.Rulesets)})
				for _, v := range p.Rulesets {
					d.Columns = append(d.Columns, rulesetColumn{Policy: p.Policy, RulesetView: v})
				}
			}
		}
		if d.Groups, err = c.opt.services.RuntimeRules.HostGroupRulesets(r.Context()); err != nil {
			return err
		}
		d.Total = len(catalog)
		for _, rule := range catalog {
			if tactic != "" && rule.Tactic != tactic || technique != "" && rule.Technique != technique {
				continue
			}
			if query != "" && !strings.Contains(strings.ToLower(strings.Join(append([]string{rule.ID, rule.Title, rule.Technique,
				rule.TechniqueName, rule.TacticName, rule.Tactic}, rule.Tags...), "\n")), query) {
				continue
			}
			row := rulesetRow{Rule: rule}
			for _, col := range d.Columns {
				a := col.Enabled(rule.ID)
				row.Cells = append(row.Cells, rulesetCell{Action: a, Unknown: a == "" && !col.Known})
			}
			d.Rules = append(d.Rules, row)
		}
		slices.Sort(d.Without)
		return nil
	}()
	switch {
	case errors.Is(err, service.ErrInvalid):
		d.Error = sentence(err.Error())
		status = http.StatusBadRequest
	case err != nil:
		c.storeError(w, r, "runtime rulesets", err)
		return
	}
	p := c.newPage(r, "rulesets", "Runtime rulesets", crumb{Label: "Policies", Href: "/policies"}, crumb{Label: "Runtime rulesets"})
	p.Data = d
	c.render(w, r, status, "rulesets", p)
}
