package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/squall-sse/squall/sse"
)

func ExampleAppendEvent() {
	data, err := sse.MarshalData(map[string]any{"orderId": "abc", "note": "<fast> & cheap"})
	if err != nil {
		panic(err)
	}
	var buf []byte
	buf, err = sse.AppendEvent(buf, sse.Event{ID: "42", Event: "order_update", Data: data, Retry: 3 * time.Second})
	if err != nil {
		panic(err)
	}
	buf, err = sse.AppendEvent(buf, sse.Event{Data: []byte("line one\nline two")})
	if err != nil {
		panic(err)
	}
	buf = append(buf, sse.Keepalive...)

	_, err = sse.AppendEvent(buf, sse.Event{ID: "1\ndata: injected"})
	fmt.Printf("%s", buf)
	fmt.Println(errors.Is(err, sse.ErrInvalidField), err)
	// Output:
	// id: 42
	// event: order_update
	// retry: 3000
	// data: {"note":"<fast> & cheap","orderId":"abc"}
	//
	// data: line one
	// data: line two
	//
	// : keepalive
	//
	// true sse: field contains CR, LF or NUL: id "1\ndata: injected"
}

func ExampleNewParser() {
	stream := "\uFEFF: hello\n\n" +
		"id: 1\nevent: greeting\ndata: hello\r\ndata:  world\n\n" +
		"retry: 5000\n\n" +
		"data: no id field, the last one persists\n\n" +
		"data: incomplete, never dispatched\n"
	p := sse.NewParser(strings.NewReader(stream))
	p.Comment = func(text string) { fmt.Printf("comment %q\n", text) }
	for {
		ev, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("id=%q event=%q data=%q\n", ev.ID, ev.Event, ev.Data)
	}
	fmt.Println("last event id:", p.LastEventID(), "retry:", p.Retry())
	// Output:
	// comment "hello"
	// id="1" event="greeting" data="hello\n world"
	// id="1" event="" data="no id field, the last one persists"
	// last event id: 1 retry: 5s
}
