package httpedge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Dependency is one thing the hub needs to serve, for /readyz and
// /metrics: Ready is nil while it works and says why not otherwise. It
// must not block; it is called at every probe and every scrape.
type Dependency struct {
	Name  string // a fixed name (a metric label): "redis_subscription"
	Ready func() error
}

// unready answers /readyz with 503 when Config.Ready or a dependency
// fails, with a body that names each dependency's state:
//
//	{"error": "…", "dependencies": {"redis_subscription": "down: …", "redis_publish": "up"}}
func (s *Server) unready(w http.ResponseWriter) bool {
	var reason string
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			reason = err.Error()
		}
	}
	deps := make(map[string]string, len(s.cfg.Dependencies))
	for _, d := range s.cfg.Dependencies {
		if err := d.Ready(); err != nil {
			deps[d.Name] = "down: " + err.Error()
			if reason == "" {
				reason = d.Name + " down: " + err.Error()
			}
		} else {
			deps[d.Name] = "up"
		}
	}
	if reason == "" {
		return false
	}
	body := map[string]any{"error": reason}
	if len(deps) > 0 {
		body["dependencies"] = deps
	}
	writeJSON(w, http.StatusServiceUnavailable, body)
	return true
}

// ObserveDependencies serves each dependency's state at /metrics, read at
// each scrape:
//
//	squall_dependency_up{dependency}  gauge: 1 while the dependency works, 0 while it is down
func (m *Metrics) ObserveDependencies(deps []Dependency) {
	for _, d := range deps {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "squall_dependency_up",
			Help:        "1 while a dependency the hub needs works (redis_subscription: the relay's pattern subscription; redis_publish: Redis takes writes), 0 while it is down.",
			ConstLabels: prometheus.Labels{"dependency": d.Name},
		}, func() float64 {
			if d.Ready() != nil {
				return 0
			}
			return 1
		}))
	}
}
