package seal

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// chunkSize is the plaintext size of every chunk of a stream but the last.
const chunkSize = 64 << 10

// A sealed stream is streamMagic, an 8-byte random nonce prefix, then
// chunks: a flag byte (1 on the last chunk), the sealed length (4 bytes),
// the sealed chunk. Chunk i's nonce is the prefix and i; its additional
// data binds i and the flag, so chunks cannot be reordered, and a stream
// cut short lacks its last chunk and fails.
const (
	prefixSize   = 8
	chunkHeader  = 5
	gcmOverhead  = 16
	streamHeader = len("\x00shoal-sealed-stream-1\x00") + prefixSize
)

// Writer seals what is written to it into w. Close writes the last chunk;
// it does not close w.
type Writer struct {
	box    *Box
	w      io.Writer
	prefix [prefixSize]byte
	buf    []byte
	n      uint32
	err    error
}

// NewWriter starts a sealed stream on w.
func (b *Box) NewWriter(w io.Writer) (*Writer, error) {
	sw := &Writer{box: b, w: w, buf: make([]byte, 0, chunkSize)}
	if _, err := rand.Read(sw.prefix[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(append(append([]byte{}, streamMagic...), sw.prefix[:]...)); err != nil {
		return nil, err
	}
	return sw, nil
}

func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	written := 0
	for len(p) > 0 {
		if len(sw.buf) == chunkSize {
			if sw.err = sw.flush(false); sw.err != nil {
				return written, sw.err
			}
		}
		n := copy(sw.buf[len(sw.buf):chunkSize], p)
		sw.buf = sw.buf[:len(sw.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

// Close seals the last chunk (shorter than chunkSize, maybe empty).
func (sw *Writer) Close() error {
	if sw.err != nil {
		return sw.err
	}
	if len(sw.buf) == chunkSize {
		if sw.err = sw.flush(false); sw.err != nil {
			return sw.err
		}
	}
	sw.err = sw.flush(true)
	if sw.err == nil {
		sw.err = errors.New("seal: stream closed")
		return nil
	}
	return sw.err
}

func (sw *Writer) flush(last bool) error {
	nonce, ad := chunkParams(sw.prefix, sw.n, last)
	sealed := sw.box.aead.Seal(nil, nonce, sw.buf, ad)
	var hdr [chunkHeader]byte
	hdr[0] = ad[len(ad)-1]
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(sealed)))
	if _, err := sw.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := sw.w.Write(sealed); err != nil {
		return err
	}
	sw.n++
	sw.buf = sw.buf[:0]
	return nil
}

func chunkParams(prefix [prefixSize]byte, i uint32, last bool) (nonce, ad []byte) {
	nonce = make([]byte, 12)
	copy(nonce, prefix[:])
	binary.BigEndian.PutUint32(nonce[prefixSize:], i)
	ad = append(append([]byte{}, streamMagic...), nonce...)
	flag := byte(0)
	if last {
		flag = 1
	}
	return nonce, append(ad, flag)
}

// PlainSize is the plaintext size of a sealed stream of sealedSize bytes.
func PlainSize(sealedSize int64) int64 {
	full := int64(chunkHeader + gcmOverhead + chunkSize)
	body := sealedSize - int64(streamHeader)
	k := body / full
	return k*chunkSize + body - k*full - chunkHeader - gcmOverhead
}

// NewReader returns a reader of the plaintext of r, and whether r was
// sealed at all: a stream written before encryption was on is read as it
// is.
func (b *Box) NewReader(r io.Reader) (io.Reader, bool, error) {
	br := bufio.NewReaderSize(r, chunkSize+chunkHeader+gcmOverhead)
	head, err := br.Peek(len(streamMagic))
	if err != nil || string(head) != string(streamMagic) {
		return br, false, nil // short or unsealed: plaintext
	}
	hdr := make([]byte, streamHeader)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, true, fmt.Errorf("%w: stream header: %w", ErrCorrupt, err)
	}
	sr := &reader{box: b, r: br}
	copy(sr.prefix[:], hdr[len(streamMagic):])
	return sr, true, nil
}

type reader struct {
	box    *Box
	r      *bufio.Reader
	prefix [prefixSize]byte
	n      uint32
	buf    []byte
	done   bool
	err    error
}

func (sr *reader) Read(p []byte) (int, error) {
	for len(sr.buf) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			return 0, io.EOF
		}
		sr.err = sr.next()
	}
	n := copy(p, sr.buf)
	sr.buf = sr.buf[n:]
	return n, nil
}

func (sr *reader) next() error {
	var hdr [chunkHeader]byte
	if _, err := io.ReadFull(sr.r, hdr[:]); err != nil {
		return fmt.Errorf("%w: chunk %d: stream cut short: %w", ErrCorrupt, sr.n, err)
	}
	size := binary.BigEndian.Uint32(hdr[1:])
	if hdr[0] > 1 || size > chunkSize+gcmOverhead || size < gcmOverhead {
		return fmt.Errorf("%w: chunk %d: bad header", ErrCorrupt, sr.n)
	}
	sealed := make([]byte, size)
	if _, err := io.ReadFull(sr.r, sealed); err != nil {
		return fmt.Errorf("%w: chunk %d: stream cut short: %w", ErrCorrupt, sr.n, err)
	}
	last := hdr[0] == 1
	nonce, ad := chunkParams(sr.prefix, sr.n, last)
	out, err := sr.box.aead.Open(sealed[:0], nonce, sealed, ad)
	if err != nil {
		return fmt.Errorf("%w: chunk %d: %w", ErrCorrupt, sr.n, err)
	}
	sr.n++
	sr.buf, sr.done = out, last
	return nil
}
