package cost

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestSteady(t *testing.T) {
	for _, tc := range []struct {
		mtbf, mttr time.Duration
		want       float64
	}{
		{720 * time.Hour, 48 * time.Hour, 720.0 / 768},
		{999 * time.Hour, time.Hour, 0.999},
		{time.Hour, 0, 1},
	} {
		got, err := Steady(tc.mtbf, tc.mttr)
		if err != nil || !near(got, tc.want) {
			t.Errorf("Steady(%v, %v) = %v, %v; want %v", tc.mtbf, tc.mttr, got, err, tc.want)
		}
	}
	if _, err := Steady(0, time.Hour); err == nil {
		t.Error("Steady with MTBF 0: want error")
	}
	if _, err := Steady(time.Hour, -time.Hour); err == nil {
		t.Error("Steady with negative MTTR: want error")
	}
}

func TestSeriesParallel(t *testing.T) {
	if got := Series(0.99, 0.99); !near(got, 0.9801) {
		t.Errorf("Series(0.99,0.99) = %v", got)
	}
	if got := Parallel(0.9, 0.9); !near(got, 0.99) {
		t.Errorf("Parallel(0.9,0.9) = %v", got)
	}
	if got := Parallel(0.9, 0.9, 0.9); !near(got, 0.999) {
		t.Errorf("Parallel x3 = %v", got)
	}
	if Series() != 1 || Parallel() != 0 {
		t.Error("empty Series must be 1 and empty Parallel 0")
	}
}

func TestKofN(t *testing.T) {
	// Hand-computed: 2-of-3 at 0.9 = 3*0.81*0.1 + 0.729 = 0.972.
	// 1-of-3 at 0.9 = 1 - 0.001 = 0.999. 3-of-3 = 0.729. 1-of-1 = a.
	// n+2 for one machine of availability 0.9375: 1 - 0.0625^3.
	for _, tc := range []struct {
		k, n int
		a    float64
		want float64
	}{
		{2, 3, 0.9, 0.972},
		{1, 3, 0.9, 0.999},
		{3, 3, 0.9, 0.729},
		{1, 1, 0.95, 0.95},
		{0, 2, 0.5, 1},
		{1, 3, 0.9375, 1 - math.Pow(0.0625, 3)},
		{2, 4, 0.5, 11.0 / 16},
	} {
		got, err := KofN(tc.k, tc.n, tc.a)
		if err != nil || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("KofN(%d,%d,%v) = %v, %v; want %v", tc.k, tc.n, tc.a, got, err, tc.want)
		}
	}
	for _, bad := range [][3]float64{{4, 3, 0.9}, {1, 0, 0.9}, {1, 2, 1.5}, {-1, 2, 0.5}} {
		if _, err := KofN(int(bad[0]), int(bad[1]), bad[2]); err == nil {
			t.Errorf("KofN%v: want error", bad)
		}
	}
}

func TestNines(t *testing.T) {
	if got := Nines(0.999); math.Abs(got-3) > 1e-9 {
		t.Errorf("Nines(0.999) = %v", got)
	}
	if !math.IsInf(Nines(1), 1) {
		t.Error("Nines(1) must be +Inf")
	}
}

func TestAllowedDowntime(t *testing.T) {
	p30, _ := Periods(Month30)
	pAvg, _ := Periods(MonthAverage)
	for _, tc := range []struct {
		target float64
		period Period
		want   time.Duration
	}{
		{0.999, p30[0], 86400 * time.Millisecond},                    // day: 86.4 s
		{0.999, p30[2], 43*time.Minute + 12*time.Second},             // 30-day month
		{0.999, pAvg[2], 43*time.Minute + 49*time.Second + 800*1e6},  // 30.4375-day month: 2629.8 s
		{0.9999, p30[4], 52*time.Minute + 33*time.Second + 600*1e6},  // 365-day year: 52m33.6s
		{0.9999, pAvg[4], 52*time.Minute + 35*time.Second + 760*1e6}, // 365.25-day year
	} {
		got, err := AllowedDowntime(tc.target, tc.period.Duration)
		if err != nil || (got-tc.want).Abs() > time.Millisecond {
			t.Errorf("AllowedDowntime(%v, %s) = %v, %v; want %v", tc.target, tc.period.Name, got, err, tc.want)
		}
	}
	if _, err := Periods("fortnight"); err == nil {
		t.Error("unknown convention: want error")
	}
	if _, err := AllowedDowntime(1.2, time.Hour); err == nil {
		t.Error("target above 1: want error")
	}
}
