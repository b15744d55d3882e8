package httpedge

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// writeError answers with a JSON reason, the shape every error of the hub
// has: {"error": "..."}.
func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{reason})
}

// writeBusy answers 429 or 503 with a Retry-After.
func writeBusy(w http.ResponseWriter, status int, after time.Duration, reason string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Round(time.Second)/time.Second))))
	writeError(w, status, reason)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
