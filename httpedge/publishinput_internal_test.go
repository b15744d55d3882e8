package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoPass is how publish bodies were read before parsePublishBody: a strict
// token walk, then encoding/json over the same bytes. It is kept as the
// oracle parsePublishBody must agree with.
func twoPass(raw []byte) (publishBody, error) {
	var b publishBody
	if !utf8.Valid(raw) {
		return b, errors.New("body is not valid UTF-8")
	}
	d := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := d.ReadToken()
		if err != nil {
			return b, err
		}
		depth := d.StackDepth()
		if depth > MaxPublishDepth {
			return b, errors.New("too deep")
		}
		if depth == 1 && tok.Kind() == '"' {
			if kind, n := d.StackIndex(1); kind == '{' && n%2 == 1 && publishFields.names[tok.String()] == "" {
				return b, errors.New("unknown field")
			}
		}
		if depth == 0 {
			break
		}
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return b, errors.New("data after the value")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&b)
	return b, err
}

var publishBodySeeds = []string{
	`{"channel":"a","data":1}`, `{"channel":"a","data":"x","event":"e","id":"1","retry":5}`,
	`{"channel":"a\n","data":1}`, `{"channel":"a","data":{"k":[1,2,{"z":null}]}}`, `{}`, `[]`, `null`, ``,
	`{"channel":"a","data":1,"id":"x\u0000"}`, `{"channel":"a","data":1}{`, `{"channel":1,"data":1}`,
	`{"channel":"a","data":1,"retry":1e3}`, `{"channel":"a","data":1,"retry":99999999999999999999}`,
	"\xff\xfe", `{"channel":"a","data":"\ud800"}`, `{"channel":null,"data":null,"retry":null,"id":null,"event":null}`,
	`{"Channel":"a","data":1}`, `{"channel":"a","channel":"b","data":1}`, `{"channel":"a","data":1}}`,
	`{"channel":"a","data":"\"[{"}`, `{"channel":"a","data":["]\\"]"]}`, ` {"channel" : "a" , "data" : [ 1 ] } `,
	`{"channel":"a","data":true,"event":["x"]}`, `{"channel":"a","data":1,"retry":"5"}`, `"x"`, `7`,
	`{"channel":"a","data":` + strings.Repeat("[", MaxPublishDepth-1) + strings.Repeat("]", MaxPublishDepth-1) + `}`,
	`{"channel":"a","data":` + strings.Repeat("[", MaxPublishDepth) + strings.Repeat("]", MaxPublishDepth) + `}`,
	`{"channel":"a","data":{"a":{"b":` + strings.Repeat(`{"c":`, MaxPublishDepth) + `1` + strings.Repeat(`}`, MaxPublishDepth) + `}}}`,
}

func describe(b publishBody, err error) string {
	if err != nil {
		return "refused"
	}
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%q", *p)
	}
	return fmt.Sprintf("channel=%s data=%q event=%s id=%s retry=%q", s(b.Channel), b.Data, s(b.Event), s(b.ID), b.Retry)
}

// parsePublishBody accepts exactly what the two passes accepted, with the
// same fields, at and past the depth bound too.
func TestParsePublishBodyAgreesWithTwoPasses(t *testing.T) {
	for _, body := range publishBodySeeds {
		want := describe(twoPass([]byte(body)))
		got := describe(parsePublishBody([]byte(body), publishFields))
		assert.Equal(t, want, got, "body %q", body)
	}
	deep := `{"channel":"a","data":` + strings.Repeat("[", MaxPublishDepth) + strings.Repeat("]", MaxPublishDepth) + `}`
	_, err := parsePublishBody([]byte(deep), publishFields)
	require.ErrorContains(t, err, "nested deeper than 64 levels")
}

func FuzzParsePublishBody(f *testing.F) {
	for _, s := range publishBodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		require.Equal(t, describe(twoPass(body)), describe(parsePublishBody(body, publishFields)), "body %q", body)
	})
}

// BenchmarkParsePublishBody compares one pass with the two it replaced on
// the bench's publish body (a 100-byte string) and on an object.
func BenchmarkParsePublishBody(b *testing.B) {
	bodies := map[string][]byte{
		"string": []byte(`{"channel":"mc-42","data":"M123 1733400000000000000 mc-42 ` + strings.Repeat("x", 60) + `"}`),
		"object": []byte(`{"channel":"orders","event":"order_update","id":"42","data":{"id":42,"items":[{"sku":"a","n":2},{"sku":"b","n":1}],"note":"leave at the door"}}`),
	}
	for _, name := range []string{"string", "object"} {
		body := bodies[name]
		for _, p := range []struct {
			name  string
			parse func([]byte) (publishBody, error)
		}{{"one-pass", func(raw []byte) (publishBody, error) { return parsePublishBody(raw, publishFields) }}, {"two-pass", twoPass}} {
			b.Run(name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
