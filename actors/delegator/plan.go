package delegator

import pb "github.com/switchboard/switchboard/proto"

// PB is the plan as it crosses the cluster.
func (p Plan) PB() *pb.RingPlan {
	out := &pb.RingPlan{Voicemail: p.Voicemail, Delegates: p.Viewers, Names: p.Names}
	for _, st := range p.Stages {
		out.Stages = append(out.Stages, &pb.RingStage{Users: st.Users, Seconds: int32(st.Seconds)})
	}
	return out
}

// PlanOf is a plan that crossed the cluster.
func PlanOf(m *pb.RingPlan) Plan {
	p := Plan{Voicemail: m.GetVoicemail(), Viewers: m.GetDelegates(), Names: m.GetNames()}
	for _, st := range m.GetStages() {
		p.Stages = append(p.Stages, Stage{Users: st.Users, Seconds: int(st.Seconds)})
	}
	return p
}
