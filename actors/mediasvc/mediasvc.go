// Package mediasvc is the node-local "media" actor: it turns call grains'
// MediaRequests into operations on this node's media workers and reports
// worker events back to the grains. Packets never pass through it.
package mediasvc

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/sdp"
	pb "github.com/switchboard/switchboard/proto"
)

// defaultCodecs is what an OFFER with no peer leg carries (the first leg of
// a click-to-call): the G.711 pair the relay decodes, mixes and plays tones
// in; the relay adds telephone-event itself.
var defaultCodecs = []sdp.Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 8, Name: "PCMA", Rate: 8000}}

// tones are the patterns a CHIME names: the join chime by default, and
// monitoring's entry and notice tones.
var tones = map[string]media.Tone{"": media.JoinChime, "entry": media.EntryTone, "notice": media.NoticeTone}

// Service owns the workers of the calls whose media this node anchors.
type Service struct {
	media   *media.Service
	log     *slog.Logger
	cluster func() *cluster.Cluster
	kind    string

	mu      sync.Mutex
	workers map[string]*media.Worker
	// self is the "media" actor once spawned: events name it as their
	// sender, so a grain that no longer has their call can release the worker.
	self atomic.Pointer[actor.PID]
}

// New wraps a media service; events go to grains of kind callKind.
func New(m *media.Service, cl func() *cluster.Cluster, callKind string, log *slog.Logger) *Service {
	return &Service{media: m, log: log, cluster: cl, kind: callKind, workers: map[string]*media.Worker{}}
}

// Props is the actor to spawn under the name "media".
func (s *Service) Props() *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			s.self.Store(ctx.Self())
		case *pb.MediaRequest:
			ctx.Respond(s.Handle(m))
		}
	})
}

// Workers is how many calls this node anchors.
func (s *Service) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.workers)
}

// Handle runs the ops in order and stops at the first failure.
func (s *Service) Handle(req *pb.MediaRequest) *pb.MediaResponse {
	resp := &pb.MediaResponse{}
	for _, op := range req.Ops {
		r := s.op(req.CallId, op)
		resp.Results = append(resp.Results, r)
		if r.Code != 0 {
			break
		}
	}
	return resp
}

func (s *Service) worker(callID string, create bool) *media.Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workers[callID]
	if w == nil && create {
		w = s.media.NewWorker(callID, s.onEvent)
		s.workers[callID] = w
	}
	return w
}

func (s *Service) leg(w *media.Worker, id string) (*media.Leg, error) {
	if l := w.Leg(id); l != nil {
		return l, nil
	}
	return w.AddLeg(id)
}

func (s *Service) op(callID string, op *pb.MediaOp) *pb.MediaResult {
	if op.Kind == pb.MediaOp_RELEASE {
		s.mu.Lock()
		w := s.workers[callID]
		delete(s.workers, callID)
		s.mu.Unlock()
		if w != nil {
			w.Close()
		}
		return &pb.MediaResult{}
	}
	w := s.worker(callID, op.Kind == pb.MediaOp_ACCEPT_OFFER || op.Kind == pb.MediaOp_OFFER)
	if w == nil {
		return &pb.MediaResult{Code: 481, Error: "no media worker for this call"}
	}
	switch op.Kind {
	case pb.MediaOp_ACCEPT_OFFER:
		l, err := s.leg(w, op.Leg)
		if err != nil {
			return fail(err)
		}
		if err := l.AcceptOffer(op.Sdp, op.Srtp); err != nil {
			return fail(err)
		}
		return &pb.MediaResult{Direction: l.RemoteDirection()}
	case pb.MediaOp_ANSWER:
		l := w.Leg(op.Leg)
		if l == nil {
			return &pb.MediaResult{Code: 500, Error: "answer on unknown leg"}
		}
		codecs := l.Codecs()
		if p := w.Leg(op.Peer); p != nil && op.Peer != op.Leg {
			codecs = p.Codecs()
		}
		return &pb.MediaResult{Sdp: l.Answer(codecs), Direction: l.RemoteDirection()}
	case pb.MediaOp_OFFER:
		l, err := s.leg(w, op.Leg)
		if err != nil {
			return fail(err)
		}
		codecs := defaultCodecs
		if op.Peer != "" {
			p := w.Leg(op.Peer)
			if p == nil {
				return &pb.MediaResult{Code: 500, Error: "offer needs the peer leg's codecs"}
			}
			codecs = p.Codecs()
		}
		return &pb.MediaResult{Sdp: l.Offer(codecs, op.Srtp)}
	case pb.MediaOp_ACCEPT_ANSWER:
		l := w.Leg(op.Leg)
		if l == nil {
			return &pb.MediaResult{Code: 500, Error: "answer for unknown leg"}
		}
		if err := l.AcceptAnswer(op.Sdp); err != nil {
			return fail(err)
		}
		return &pb.MediaResult{Direction: l.RemoteDirection()}
	case pb.MediaOp_BRIDGE:
		w.Bridge(op.Leg, op.Peer)
	case pb.MediaOp_TONE:
		w.Route(op.Leg, media.ToneSource())
	case pb.MediaOp_PROMPT:
		if op.Leg == "" {
			return &pb.MediaResult{Code: 500, Error: "prompt needs the leg that hears it"}
		}
		src, err := media.PromptSource(media.Prompt(op.Tone))
		if err != nil {
			return &pb.MediaResult{Code: 500, Error: err.Error()}
		}
		w.Route(op.Leg, src)
	case pb.MediaOp_SILENCE:
		w.Route(op.Leg, media.Silence())
	case pb.MediaOp_REMOVE_LEG:
		w.RemoveLeg(op.Leg)
	case pb.MediaOp_MIX:
		if op.Leg == "" {
			return &pb.MediaResult{Code: 500, Error: "mix needs the leg that hears it"}
		}
		w.Mix(op.Leg, op.Legs)
	case pb.MediaOp_CHIME:
		tone, known := tones[op.Tone]
		if !known {
			return &pb.MediaResult{Code: 500, Error: "unknown tone " + strconv.Quote(op.Tone)}
		}
		if err := w.Chime(tone, op.Legs...); err != nil {
			return &pb.MediaResult{Code: 500, Error: err.Error()}
		}
	default:
		return &pb.MediaResult{Code: 500, Error: "unknown media op " + op.Kind.String()}
	}
	return &pb.MediaResult{}
}

// fail maps a media error to the SIP status the caller should see; an SDP
// that cannot be read or used is the offerer's problem (488).
func fail(err error) *pb.MediaResult {
	code := int32(488)
	switch {
	case errors.Is(err, media.ErrNoCodec), errors.Is(err, media.ErrSRTPRequired):
		code = 488
	case errors.Is(err, media.ErrNoPorts):
		code = 503
	}
	return &pb.MediaResult{Code: code, Error: err.Error()}
}

func (s *Service) onEvent(e media.Event) {
	msg := eventMessage(e)
	if msg == nil {
		return
	}
	cl := s.cluster()
	if cl == nil {
		return
	}
	if pid := cl.Get(e.CallID, s.kind); pid != nil {
		cl.ActorSystem.Root.RequestWithCustomSender(pid, msg, s.self.Load())
	}
}

// eventMessage is what the call grain is told of a worker event, nil for
// events it does not need.
func eventMessage(e media.Event) *pb.MediaEvent {
	switch e.Kind {
	case media.EventRTPTimeout, media.EventDTMF, media.EventPromptDone:
	default:
		return nil
	}
	msg := &pb.MediaEvent{CallId: e.CallID, LegId: e.LegID, Kind: e.Kind.String()}
	if e.Kind == media.EventDTMF {
		msg.Digit = string(e.Digit)
	}
	return msg
}
