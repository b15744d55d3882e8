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

// The values of writeJSON's headers, shared by every answer: Header.Set
// would allocate a slice for each. Their capacity is their length, so a
// handler that adds to one appends to a copy.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
