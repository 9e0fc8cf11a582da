package gen

import (
	"math/bits"

	"k8s.io/apimachinery/pkg/types"
)

// rng is a splitmix64 generator. It is written here rather than taken from math/rand/v2 so
// that the byte-identical-output promise ("same seed → same bytes") depends on nothing but
// this file: the standard library does not promise that IntN and friends keep their exact
// sequences across Go releases.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// mix64 is the splitmix64 finalizer: a bijective scramble of a 64-bit value.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform value in [0, n) (Lemire's multiply-shift; the tiny bias for huge n
// does not matter for a synthetic cluster). n must be > 0.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// pick returns an index chosen with the given integer weights.
func (r *rng) pick(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// k8sAlphabet is the alphabet Kubernetes uses for generated names (k8s.io/apimachinery/pkg/util/rand):
// no vowels and no easily confused characters.
const k8sAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// randString returns n characters from k8sAlphabet.
func (r *rng) randString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = k8sAlphabet[r.intn(len(k8sAlphabet))]
	}
	return string(b)
}

// suffixSpace is the number of distinct 5-character generated-name suffixes (27^5).
const suffixSpace = 27 * 27 * 27 * 27 * 27

// suffixer maps 0, 1, 2, … to distinct random-looking 5-character suffixes, the way the
// API server's generateName would, but as a bijection so that no set of used names is needed.
type suffixer struct{ a, b uint64 }

// newSuffixer derives a suffixer from a 64-bit key. The multiplier is not a multiple of 3,
// so it is coprime with 27^5 = 3^15 and i ↦ a·i+b mod 27^5 is a permutation.
func newSuffixer(key uint64) suffixer {
	k := mix64(key)
	a := (k>>32)%suffixSpace | 1
	for a%3 == 0 {
		a += 2
	}
	return suffixer{a: a, b: (k & 0xffffffff) % suffixSpace}
}

func (s suffixer) suffix(i int) string {
	v := (s.a*uint64(i) + s.b) % suffixSpace
	var b [5]byte
	for j := 4; j >= 0; j-- {
		b[j] = k8sAlphabet[v%27]
		v /= 27
	}
	return string(b[:])
}

// hex64 returns 64 hex digits derived from h, for image digests and container IDs.
func hex64(h uint64) string {
	const hex = "0123456789abcdef"
	var out [64]byte
	for i := 0; i < 4; i++ {
		h = mix64(h + uint64(i))
		for j := 0; j < 16; j++ {
			out[i*16+j] = hex[(h>>(4*j))&0xf]
		}
	}
	return string(out[:])
}

func typesUID(s string) types.UID { return types.UID(s) }

// uid returns a deterministic RFC 4122 version-4-shaped UID for object number idx of a kind.
func uid(seed uint64, kind kindTag, idx int) string {
	h1 := mix64(seed ^ uint64(kind)<<56 ^ uint64(idx))
	h2 := mix64(h1 ^ 0x6b70617468) // "kpath"
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(h1 >> (8 * i))
		b[8+i] = byte(h2 >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return string(out[:])
}

// kindTag separates the UID spaces of the object kinds.
type kindTag uint8

const (
	tagNamespace kindTag = iota + 1
	tagNode
	tagConfigMap
	tagService
	tagDeployment
	tagReplicaSet
	tagStatefulSet
	tagDaemonSet
	tagPod
	tagSystemPod
	tagEndpointSlice
	tagNetworkPolicy
	tagContainer
)
