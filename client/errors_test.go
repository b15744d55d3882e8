package client

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{name: "absent", v: "", want: 0},
		{name: "seconds", v: "120", want: 2 * time.Minute},
		{name: "zero", v: "0", want: 0},
		{name: "negative", v: "-5", want: 0},
		{name: "huge", v: "99999999999999999", want: time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second},
		{name: "garbage", v: "soon", want: 0},
		{name: "HTTP-date ahead", v: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "HTTP-date past", v: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, retryAfter(tt.v, now), "retryAfter(%q)", tt.v)
		})
	}
}

func TestReason(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "JSON error", body: `{"error": "token expired"}`, want: "token expired"},
		{name: "JSON without error", body: `{"message": "x"}`, want: `{"message": "x"}`},
		{name: "text", body: "  nope \n", want: "nope"},
		{name: "empty", body: "", want: ""},
		{name: "long text cut on a rune", body: long, want: strings.Repeat("é", 100) + "..."},
		{name: "invalid UTF-8", body: "a\xffb", want: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, reason([]byte(tt.body)), "reason(%q)", tt.body)
		})
	}
}

func TestIsEventStream(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"text/event-stream", true},
		{"text/event-stream; charset=utf-8", true},
		{"Text/Event-Stream ;charset=utf-8", true},
		{"", false},
		{"text/plain", false},
		{"text/event-streamx", false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			assert.Equal(t, tt.want, isEventStream(tt.ct), "isEventStream(%q)", tt.ct)
		})
	}
}

func TestStatusErrorText(t *testing.T) {
	tests := []struct {
		err  StatusError
		want string
	}{
		{StatusError{StatusCode: 401, Reason: "token expired"}, "client: server answered 401 Unauthorized: token expired"},
		{StatusError{StatusCode: 404}, "client: server answered 404 Not Found"},
		{StatusError{StatusCode: 599}, "client: server answered 599"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error(), "Error()")
		})
	}
}
