package sse_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/sse"
)

func TestNew(t *testing.T) {
	e, err := sse.New(map[string]string{"orderId": "abc"}, sse.WithEvent("order_update"), sse.WithID("42"), sse.WithRetry(3*time.Second))
	require.NoError(t, err)
	assert.Equal(t, sse.Event{ID: "42", Event: "order_update", Data: []byte(`{"orderId":"abc"}`), Retry: 3 * time.Second}, e)

	e, err = sse.New("raw <text>")
	require.NoError(t, err)
	assert.Equal(t, "raw <text>", string(e.Data))

	_, err = sse.New("x", sse.WithID("4\n2"))
	assert.True(t, errors.Is(err, sse.ErrInvalidField), "New validates: %v", err)
	_, err = sse.New(func() {})
	assert.Error(t, err, "data that cannot be JSON")
}
