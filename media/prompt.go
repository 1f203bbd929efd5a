package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Prompts are what the relay itself plays to a leg that talks to nobody
// yet: a call queue's greeting and music, a message before hanging up.
// Until recorded prompts are configured each sound is a generated pattern,
// encoded once in both G.711 laws and shared by every leg, and played by the
// service's 20 ms clock (the hold tone's): a waiting caller costs one frame
// copied into its stream and one send per tick, and no goroutine or timer
// of its own.

// Prompt names what a leg hears with PromptSource.
type Prompt string

const (
	// QueuePrompt: the greeting once, then music, looped (a caller waiting
	// in a call queue).
	QueuePrompt Prompt = "queue"
	// MessagePrompt: the greeting once, then silence and EventPromptDone.
	MessagePrompt Prompt = "message"
	// MusicPrompt: music, looped.
	MusicPrompt Prompt = "music"
	// VoicemailPrompt: the greeting once, the beep, then silence and
	// EventPromptDone: recording (Worker.Record) starts after the beep.
	VoicemailPrompt Prompt = "voicemail"
)

// ErrUnknownPrompt: PromptSource was given a name that is none of the Prompts.
var ErrUnknownPrompt = errors.New("media: unknown prompt")

// Note is one part of a generated pattern: Hz for Ms milliseconds, silence
// when Hz is 0.
type Note struct{ Hz, Ms int }

// PromptSound is one generated sound the prompts are made of, as the README
// lists it.
type PromptSound struct {
	Name  string // "greeting", "music", "beep"
	Notes []Note // played in order; every note has 10 ms fades, at about -16 dBFS
	Loop  bool   // played again from its start until the leg hears something else
}

// The sounds' patterns. Their notes are all whole 20 ms frames, so that each
// frame holds one note, and none is a frequency of the hold tone (425 Hz) or
// of the chimes (660, 880, 1400, 1800 Hz), or another sound's.
var (
	// A rising G major arpeggio, 2.5 s.
	greetingNotes = []Note{{784, 600}, {0, 100}, {988, 600}, {0, 100}, {1175, 1100}}
	// C D G D C D C, a 4 s loop.
	musicNotes = []Note{{523, 440}, {0, 60}, {587, 440}, {0, 60}, {784, 440}, {0, 60},
		{587, 440}, {0, 60}, {523, 440}, {0, 60}, {587, 440}, {0, 60}, {523, 940}, {0, 60}}
	// A pause after the greeting's last note, then the voicemail beep: 1 kHz,
	// the usual "speak now" tone, 0.7 s.
	beepNotes = []Note{{0, 200}, {1000, 500}}
)

// Prompts describes the generated sounds: greeting, music, beep. The notes
// are copies: changing them changes nothing played.
func Prompts() []PromptSound {
	return []PromptSound{{"greeting", slices.Clone(greetingNotes), false}, {"music", slices.Clone(musicNotes), true},
		{"beep", slices.Clone(beepNotes), false}}
}

// sound is a pattern encoded in 20 ms frames of each G.711 law.
type sound struct{ u, a [][frameSamples]byte }

var greetingSound, musicSound, beepSound = encodeSound(greetingNotes), encodeSound(musicNotes), encodeSound(beepNotes)

func encodeSound(notes []Note) *sound {
	lin := makePattern(notes)
	s := &sound{u: make([][frameSamples]byte, len(lin)), a: make([][frameSamples]byte, len(lin))}
	for i := range lin {
		encodeULaw(s.u[i][:], &lin[i])
		encodeALaw(s.a[i][:], &lin[i])
	}
	return s
}

// frame is the sound's frame i in one law.
func (s *sound) frame(i uint64, aLaw bool) *[frameSamples]byte {
	if aLaw {
		return &s.a[i]
	}
	return &s.u[i]
}

// program is what a Prompt plays: maybe the greeting, maybe the beep, then
// a loop or silence.
type program struct {
	greeting bool
	beep     bool
	loop     *sound // nil: silence, and the prompt has ended
}

var programs = map[Prompt]program{
	QueuePrompt:     {greeting: true, loop: musicSound},
	MessagePrompt:   {greeting: true},
	MusicPrompt:     {loop: musicSound},
	VoicemailPrompt: {greeting: true, beep: true},
}

// promptPlay is one prompt asked of a leg. Each Route makes its own, so a
// replan (a chime, a leg added) leaves the prompt where it is in time, and
// routing a prompt again starts it over. Its fields but program are the
// service clock's own.
type promptPlay struct {
	program
	started bool
	start   uint64 // the clock's frame when the leg began hearing it
	ended   bool   // EventPromptDone was reported
}

// PromptSource: the destination hears the prompt from its start (from each
// Route with it), replacing what it heard, until a later Route, Bridge or
// Mix on it. An unknown name is ErrUnknownPrompt.
func PromptSource(p Prompt) (Source, error) {
	prog, ok := programs[p]
	if !ok {
		return Source{}, fmt.Errorf("%w %q (want %q, %q, %q or %q)", ErrUnknownPrompt, string(p), QueuePrompt, MessagePrompt, MusicPrompt, VoicemailPrompt)
	}
	return Source{kind: srcPrompt, prompt: &promptPlay{program: prog}}, nil
}

// at is the prompt's frame pos frames after its start, nil once it has ended.
func (p *promptPlay) at(pos uint64, aLaw bool) *[frameSamples]byte {
	if p.greeting {
		n := uint64(len(greetingSound.u))
		if pos < n {
			return greetingSound.frame(pos, aLaw)
		}
		pos -= n
	}
	if p.beep {
		n := uint64(len(beepSound.u))
		if pos < n {
			return beepSound.frame(pos, aLaw)
		}
		pos -= n
	}
	if p.loop == nil {
		return nil
	}
	return p.loop.frame(pos%uint64(len(p.loop.u)), aLaw)
}

// promptSource marks a prompt as what a leg hears (in outState.src; which
// prompt is outState.play).
var promptSource = new(Leg)

// playPrompt sends the leg's frame of its prompt for the clock's frame, in
// the leg's first agreed G.711 law, on the leg's own stream. The prompt moves
// on with the clock whether or not the leg can be sent to (on hold, no G.711
// agreed), so a message ends on time regardless. It is true once, at the
// frame where the prompt has ended. Service clock.
func (l *Leg) playPrompt(p *promptPlay, frame uint64, now int64) (ended bool) {
	if !p.started {
		p.started, p.start = true, frame
	}
	t := l.table.Load()
	f := p.at(frame-p.start, t.g711A)
	if f == nil {
		ended, p.ended = !p.ended, true
		return ended
	}
	dst := l.dest.Load()
	if t.g711 < 0 || !dst.recv || !dst.addr.IsValid() {
		return false
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	o := &l.out
	// Consecutive frames of the same prompt continue the talk spurt; anything
	// else (another source before, frames skipped) starts a new one.
	spurt := o.src != promptSource || o.play != p || o.clockFrame+1 != frame
	o.src, o.srcSSRC, o.play, o.clockFrame = promptSource, 0, p, frame
	l.sendFrame(byte(t.g711), f[:], spurt, now, dst.addr)
	return false
}

// sendFrame sends one 20 ms frame of generated G.711 audio on the leg's
// stream: the next sequence number, and the timestamp one frame on, or, for
// a new talk spurt, moved by the time elapsed and with the marker set so the
// receiver resyncs its jitter buffer. Under outMu.
func (l *Leg) sendFrame(pt byte, payload []byte, spurt bool, now int64, to netip.AddrPort) {
	o := &l.out
	marker, adv := byte(0), uint32(toneStep)
	if spurt {
		marker, adv = 0x80, o.advance(now, 8000)
	}
	o.seq++
	o.ts += adv
	o.sentAt = now
	out := o.packet(12 + len(payload))
	out[0] = 0x80
	out[1] = marker | pt
	binary.BigEndian.PutUint16(out[2:], o.seq)
	binary.BigEndian.PutUint32(out[4:], o.ts)
	binary.BigEndian.PutUint32(out[8:], l.ssrc)
	copy(out[12:], payload)
	l.send(out, to)
}
