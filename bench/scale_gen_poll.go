package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// poller reads the generator's streams from epoll sets of its own instead
// of Go's netpoller. The generator shares the machine's cores with the
// hubs it measures, so its CPU per delivery delays the hubs: with a
// goroutine per stream, each delivery cost a netpoll wake-up, a goroutine
// switch, the read that returns the chunk and a second read that returns
// EAGAIN and parks (about 10 µs). Here a delivery is one event out of a
// batch that one epoll_wait returns and one read into a shared buffer.
//
// Streams are still opened the plain way (dial, request, head, on a
// goroutine each with bounded concurrency); attach then moves the socket
// over. A stream that is cut is closed by its worker and reopened from a
// new goroutine with Last-Event-ID, as a browser would.
type poller struct {
	channel string
	opening chan struct{} // bounds the streams being opened at once
	report  func(seq, ms int)
	fail    chan error // the first error that ends the run; later ones are dropped
	resets  atomic.Int64

	streams []*pollStream // indexed by the epoll event's data
	epfds   []int
	stop    int // eventfd in every set; written by close
	workers sync.WaitGroup
}

// pollStream is one stream. The fields other than fd belong to whoever
// holds the stream: its opener until it publishes fd, then the worker of
// its set until the worker sets fd to -1 and hands it to a new opener.
type pollStream struct {
	idx    int
	host   string
	fd     atomic.Int32 // -1 while (re)opening; the Store orders the other fields before the worker's Load
	lastID []byte
	carry  []byte // a partial line waiting for the rest of it
}

// pollMaxLine is the longest line kept: the bufio.Reader this replaced
// cut a stream on a longer one, so does this.
const pollMaxLine = 2048

// stopEvent marks the stop eventfd in the epoll data, which otherwise
// holds a stream index.
const stopEvent = -1

// newPoller makes the epoll sets and starts one worker per set. Two sets,
// because GOMAXPROCS is 2 and the batches stay large at 18,000 streams.
func newPoller(hosts []string, offset, conns int, channel string, report func(seq, ms int)) (*poller, error) {
	p := &poller{
		channel: channel,
		// A loaded hub must read each request within its header timeout.
		opening: make(chan struct{}, 200),
		report:  report,
		fail:    make(chan error, 1),
		stop:    -1,
	}
	for i := range conns {
		s := &pollStream{idx: i, host: hosts[(offset+i)%len(hosts)]}
		s.fd.Store(-1)
		p.streams = append(p.streams, s)
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p.stop = stop
	for range 2 {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err == nil {
			err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stop, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: stopEvent})
			p.epfds = append(p.epfds, epfd)
		}
		if err != nil {
			p.close()
			return nil, fmt.Errorf("epoll: %w", err)
		}
	}
	for _, epfd := range p.epfds {
		p.workers.Add(1)
		go func() { defer p.workers.Done(); p.run(epfd) }()
	}
	return p, nil
}

// close stops the workers, waits for them and closes every fd. Streams
// being reopened at that moment are not waited for.
func (p *poller) close() {
	if p.stop >= 0 {
		unix.Write(p.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	p.workers.Wait()
	for _, s := range p.streams {
		if fd := s.fd.Swap(-1); fd >= 0 {
			unix.Close(int(fd))
		}
	}
	for _, epfd := range p.epfds {
		unix.Close(epfd)
	}
	if p.stop >= 0 {
		unix.Close(p.stop)
	}
}

func (p *poller) failed(err error) {
	select {
	case p.fail <- err:
	default:
	}
}

// start opens stream i and attaches it; ready is told once that ended
// either way.
func (p *poller) start(i int, ready *sync.WaitGroup) {
	s := p.streams[i]
	c, rd, err := p.open(s.host, "")
	if err == nil {
		err = p.attach(s, c, rd)
	}
	ready.Done()
	if err != nil {
		p.failed(fmt.Errorf("stream %d: %w", i, err))
	}
}

// open is tried a few times: a hub under a storm of connections may
// reset some.
func (p *poller) open(host, lastID string) (net.Conn, *bufio.Reader, error) {
	var err error
	for try := 0; try < 5; try++ {
		if try > 0 {
			time.Sleep(time.Duration(100<<try) * time.Millisecond) // backoff before retrying the open
		}
		p.opening <- struct{}{}
		c, rd, e := openScaleStream(host, p.channel, lastID)
		<-p.opening
		if e == nil {
			return c, rd, nil
		}
		err = e
	}
	return nil, nil, err
}

// attach moves an open stream from Go's netpoller to the stream's epoll
// set: it keeps a duplicate of the socket and closes the net.Conn, which
// takes the socket out of the netpoller. What the reader buffered past
// the head is consumed first, so no byte is lost in the move.
func (p *poller) attach(s *pollStream, c net.Conn, rd *bufio.Reader) error {
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	if cerr := rc.Control(func(orig uintptr) { fd, err = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	// The duplicate shares the file description, which Go made
	// non-blocking already; saying so again costs nothing and is what the
	// worker's reads rely on.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	s.carry = s.carry[:0]
	head, _ := rd.Peek(rd.Buffered())
	if !p.consume(s, head, time.Now()) {
		unix.Close(fd)
		return errors.New("line too long")
	}
	s.fd.Store(int32(fd))
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.idx)}
	if err := unix.EpollCtl(p.epfds[s.idx%len(p.epfds)], unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		s.fd.Store(-1)
		unix.Close(fd)
		return fmt.Errorf("epoll add: %w", err)
	}
	return nil
}

// run serves one epoll set until close. Level-triggered, one read per
// ready socket: what a read leaves (more than the buffer holds) makes the
// socket ready again at the next wait.
func (p *poller) run(epfd int) {
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if err == unix.EINTR { // the runtime's preemption signal
			continue
		}
		if err != nil {
			p.failed(fmt.Errorf("epoll wait: %w", err))
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == stopEvent {
				return
			}
			s := p.streams[ev.Fd]
			fd := int(s.fd.Load())
			if fd < 0 {
				continue
			}
			m, err := unix.Read(fd, buf)
			if m > 0 && p.consume(s, buf[:m], time.Now()) {
				continue
			}
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			p.cut(s, fd) // end of stream, an error, or a line too long
		}
	}
}

// cut closes a stream (which also takes it out of its epoll set) and
// reopens it with Last-Event-ID from a goroutine of its own.
func (p *poller) cut(s *pollStream, fd int) {
	s.fd.Store(-1)
	unix.Close(fd)
	p.resets.Add(1)
	lastID := string(s.lastID)
	go func() {
		c, rd, err := p.open(s.host, lastID)
		if err == nil {
			err = p.attach(s, c, rd)
		}
		if err != nil {
			p.failed(fmt.Errorf("stream %d: %w", s.idx, err))
		}
	}()
}

// consume parses the lines of data, received at now, keeping a partial
// last line for the next read. False means a line is too long.
func (p *poller) consume(s *pollStream, data []byte, now time.Time) bool {
	if len(s.carry) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.carry = append(s.carry, data...)
			return len(s.carry) <= pollMaxLine
		}
		s.carry = append(s.carry, data[:i+1]...)
		if len(s.carry) > pollMaxLine {
			return false
		}
		p.line(s, s.carry, now)
		s.carry = s.carry[:0]
		data = data[i+1:]
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.carry = append(s.carry, data...)
			return len(s.carry) <= pollMaxLine
		}
		p.line(s, data[:i+1], now)
		data = data[i+1:]
	}
	return true
}

// line handles one line: "id: " is kept for a resume, "data: SEQ
// UNIXNANOS" is a receipt, anything else (chunk sizes, blank lines) is
// skipped.
func (p *poller) line(s *pollStream, line []byte, now time.Time) {
	if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
		s.lastID = append(s.lastID[:0], bytes.TrimSpace(id)...)
		return
	}
	rest, ok := bytes.CutPrefix(line, []byte("data: "))
	if !ok {
		return
	}
	seqB, nsB, ok := bytes.Cut(bytes.TrimSpace(rest), []byte(" "))
	if !ok {
		return
	}
	seq, ns := atoiBytes(seqB), atoiBytes(nsB)
	if seq < 0 || ns < 0 {
		return
	}
	p.report(int(seq), int(now.Sub(time.Unix(0, ns)).Milliseconds()))
}
