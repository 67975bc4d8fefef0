package main

import (
	"net/http"
	"sync"
	"time"
)

// batchSize is the most a stream's write gathers, unless one event is larger.
const batchSize = 64 << 10

var batches = sync.Pool{New: func() any { b := make([]byte, 0, batchSize); return &b }}

// batchWriter writes a stream's frames in batches, each one write with a deadline and a
// flush.
type batchWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (bw batchWriter) send(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	bp := batches.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() { *bp = buf[:0]; batches.Put(bp) }()
	for _, f := range frames {
		if len(buf) > 0 && len(buf)+len(f) > batchSize {
			if err := bw.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = append(buf, f...)
	}
	return bw.write(buf)
}

func (bw batchWriter) write(b []byte) error {
	if err := bw.rc.SetWriteDeadline(time.Now().Add(bw.timeout)); err != nil {
		return err
	}
	if _, err := bw.w.Write(b); err != nil {
		return err
	}
	return bw.rc.Flush()
}
