package gen

import "time"

// day is a calendar date as a number of days since 1970-01-01. Dates of
// the native formats have no time of day: integer days keep the window
// arithmetic of the rupture rules exact and the output fast to format.
type day int32

// civil is the day of a proleptic Gregorian date (H. Hinnant's
// days_from_civil). Out-of-range days and months are not normalised.
func civil(y, m, d int) day {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return day(era*146097 + doe - 719468)
}

// ymd is the calendar date of a day.
func (d day) ymd() (y, m, dd int) {
	z := int(d) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, dd
}

func dayOf(t time.Time) day { return civil(t.Year(), int(t.Month()), t.Day()) }

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// addYears moves a date by whole years as time.AddDate does: 29 February
// of a year that has none becomes 1 March.
func (d day) addYears(n int) day {
	y, m, dd := d.ymd()
	y += n
	if m == 2 && dd == 29 && !isLeap(y) {
		return civil(y, 3, 1)
	}
	return civil(y, m, dd)
}

// addMonths moves a date by whole months, normalising like time.AddDate
// (31 March minus one month is 3 March).
func (d day) addMonths(n int) day {
	y, m, dd := d.ymd()
	t := time.Date(y, time.Month(m)+time.Month(n), dd, 0, 0, 0, 0, time.UTC)
	return dayOf(t)
}

// age is the age in whole years on a date of someone born on birth.
func age(birth, on day) int {
	by, bm, bd := birth.ymd()
	y, m, d := on.ymd()
	a := y - by
	if m < bm || (m == bm && d < bd) {
		a--
	}
	return a
}

// appendDate writes YYYY-MM-DD.
func appendDate(b []byte, d day) []byte {
	y, m, dd := d.ymd()
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append(b, byte('0'+m/10), byte('0'+m%10), '-')
	return append(b, byte('0'+dd/10), byte('0'+dd%10))
}

func (d day) String() string { return string(appendDate(make([]byte, 0, 10), d)) }
