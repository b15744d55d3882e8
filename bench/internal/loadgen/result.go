package loadgen

import "fmt"

// Better says which way a metric improves.
type Better string

const (
	Higher Better = "higher"
	Lower  Better = "lower"
	Info   Better = ""
)

// Metric is one figure of a run. Runs of the same scenario against
// different servers report the same metric names in the same order, so the
// orchestrator can line them up and print ratios.
type Metric struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Better Better  `json:"better"`
	// Missing marks a figure that could not be measured in this run.
	Missing bool `json:"missing,omitempty"`
}

// Result is what one generator run reports on stdout, as JSON.
type Result struct {
	Scenario string   `json:"scenario"`
	Params   string   `json:"params"`
	Metrics  []Metric `json:"metrics"`
	// Errors are correctness failures: no deliveries, lost or duplicated
	// events where none are allowed, streams that never connected. They
	// make the bench exit non-zero; slow figures never do.
	Errors []string `json:"errors,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

func (r *Result) add(name, unit string, v float64, b Better) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Unit: unit, Value: v, Better: b})
}

func (r *Result) missing(name, unit string, b Better) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Unit: unit, Better: b, Missing: true})
}

func (r *Result) errorf(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

func (r *Result) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Get returns the metric called name.
func (r *Result) Get(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}
