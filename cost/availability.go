package cost

import (
	"fmt"
	"math"
	"time"
)

// Availability math. Availability is a fraction in [0, 1] of the time a
// thing works; downtime is the rest.

// Steady returns the steady-state availability of a repairable unit:
// A = MTBF / (MTBF + MTTR).
func Steady(mtbf, mttr time.Duration) (float64, error) {
	if mtbf <= 0 {
		return 0, fmt.Errorf("MTBF must be positive, got %v", mtbf)
	}
	if mttr < 0 {
		return 0, fmt.Errorf("MTTR must not be negative, got %v", mttr)
	}
	return float64(mtbf) / float64(mtbf+mttr), nil
}

// Series is the availability of parts that must all work: the product.
func Series(as ...float64) float64 {
	a := 1.0
	for _, x := range as {
		a *= x
	}
	return a
}

// Parallel is the availability of parts of which any one suffices:
// one minus the chance that all are down at once (failures independent).
func Parallel(as ...float64) float64 {
	down := 1.0
	for _, x := range as {
		down *= 1 - x
	}
	return 1 - down
}

// KofN is the availability of n identical, independent units of availability
// a when at least k must work: the binomial tail sum over i = k..n of
// C(n,i) a^i (1-a)^(n-i). "n+2" redundancy for a job needing one unit is KofN(1, 3, a).
func KofN(k, n int, a float64) (float64, error) {
	if n < 1 || k < 0 || k > n {
		return 0, fmt.Errorf("need 0 <= k <= n and n >= 1, got k=%d n=%d", k, n)
	}
	if err := checkFraction(a); err != nil {
		return 0, err
	}
	sum := 0.0
	for i := k; i <= n; i++ {
		sum += binomial(n, i) * math.Pow(a, float64(i)) * math.Pow(1-a, float64(n-i))
	}
	return math.Min(sum, 1), nil
}

func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

func checkFraction(a float64) error {
	if math.IsNaN(a) || a < 0 || a > 1 {
		return fmt.Errorf("availability must be between 0 and 1, got %v", a)
	}
	return nil
}

// Nines is -log10(1 - a): 0.999 is 3 nines. 1 is +Inf.
func Nines(a float64) float64 {
	return -math.Log10(1 - a)
}

// MonthConvention says how long a month is, for downtime budgets and monthly
// costs. SLO tools disagree: many use 30 days, others a twelfth of a Julian year.
type MonthConvention string

const (
	// Month30 counts a month as 30 days, a quarter as 90 and a year as 365.
	Month30 MonthConvention = "30d"
	// MonthAverage counts a month as 365.25/12 = 30.4375 days, a quarter as
	// three of those and a year as 365.25 days.
	MonthAverage MonthConvention = "avg"
)

// Period is a named length of time for downtime budgets.
type Period struct {
	Name     string
	Duration time.Duration
}

// Periods returns day, week, month, quarter and year under the convention.
func Periods(c MonthConvention) ([]Period, error) {
	day := 24 * time.Hour
	var month, year time.Duration
	switch c {
	case Month30, "":
		month, year = 30*day, 365*day
	case MonthAverage:
		year = time.Duration(365.25 * float64(day))
		month = year / 12
	default:
		return nil, fmt.Errorf("unknown month convention %q (want 30d or avg)", c)
	}
	return []Period{
		{"day", day}, {"week", 7 * day}, {"month", month}, {"quarter", 3 * month}, {"year", year},
	}, nil
}

// AllowedDowntime is how much downtime an availability target allows in a period.
func AllowedDowntime(target float64, period time.Duration) (time.Duration, error) {
	if err := checkFraction(target); err != nil {
		return 0, err
	}
	return time.Duration((1 - target) * float64(period)), nil
}
