package traces

// Layer is one layer of function results added to a trace after it was
// saved ("execute function" in the editor), as DecodeLayer reads it.
type Layer struct {
	TLIDs           []TLID
	FunctionResults []FunctionResult
}

// resultKey is what a later layer replaces a result by.
type resultKey struct {
	tlid        TLID
	exprID      uint64
	fnName, arg string
}

// MergeLayers returns base with layers applied in order: a base result with
// the same (TLID, ExprID, FnName, ArgHash) as a layer's result is replaced
// in place by the last such layer result (the later layer wins), the other
// layer results are appended in the order they first appear, and TLIDs
// become the union (first-seen order) of base's, the layers' and the layer
// results'. base and layers are not modified; values are shared, not
// copied. It is a pure function, safe for concurrent use.
func MergeLayers(base *Trace, layers []Layer) *Trace {
	out := *base
	// Layers are usually small next to the base, so only their results are
	// indexed; the base is scanned once against that index.
	n, nt := 0, len(base.TLIDs)
	for _, l := range layers {
		n += len(l.FunctionResults)
		nt += len(l.TLIDs) + len(l.FunctionResults)
	}
	added := make([]FunctionResult, 0, n)
	at := make(map[resultKey]int, n)
	tlids := append(make([]TLID, 0, nt), base.TLIDs...)
	for _, l := range layers {
		tlids = append(tlids, l.TLIDs...)
		for _, fr := range l.FunctionResults {
			tlids = append(tlids, fr.TLID)
			k := resultKey{fr.TLID, fr.ExprID, fr.FnName, fr.ArgHash}
			if i, ok := at[k]; ok {
				added[i] = fr
				continue
			}
			at[k] = len(added)
			added = append(added, fr)
		}
	}
	res := make([]FunctionResult, len(base.FunctionResults), len(base.FunctionResults)+len(added))
	copy(res, base.FunctionResults)
	used := make([]bool, len(added))
	if len(added) > 0 {
		for i := range res {
			k := resultKey{res[i].TLID, res[i].ExprID, res[i].FnName, res[i].ArgHash}
			if j, ok := at[k]; ok {
				res[i] = added[j]
				used[j] = true
			}
		}
	}
	for j, fr := range added {
		if !used[j] {
			res = append(res, fr)
		}
	}
	out.FunctionResults = res
	out.TLIDs = dedupeTLIDs(tlids)
	return &out
}
