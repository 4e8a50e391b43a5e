package main

import "testing"

func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"plain", "", []string{"-o", "/tmp/bench.md"}, "go run ./bench -o /tmp/bench.md"},
		{"DSN from the environment, quoted for the shell", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", nil,
			"PAIRGATE_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go run ./bench"},
		{"password in the environment's DSN", "postgres://bench:s3cret@db:5432/test", []string{"-quick"},
			"PAIRGATE_TEST_POSTGRES=postgres://bench:xxxxx@db:5432/test go run ./bench -quick"},
		{"password in -postgres", "", []string{"-postgres", "host=db password=s3cret dbname=test"},
			"go run ./bench -postgres 'host=db password=xxxxx dbname=test'"},
		{"password in -postgres=", "", []string{"-postgres=postgres://u:pw@db/test"},
			"go run ./bench -postgres=postgres://u:xxxxx@db/test"},
		{"a quote in an argument", "", []string{"-o", "it's.md"}, `go run ./bench -o 'it'\''s.md'`},
	} {
		if got := commandLine(c.args, c.env); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestCPUModel(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n"
	if got := cpuModel([]byte(cpuinfo)); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel: %q", got)
	}
	if got := cpuModel([]byte("processor\t: 0\nHardware\t: BCM2835\n")); got != "" {
		t.Errorf("cpuModel without a model name: %q, want \"\"", got)
	}
}

func TestParseHWM(t *testing.T) {
	status := "Name:\tpairgate\nVmPeak:\t 1800000 kB\nVmHWM:\t  133120 kB\nVmRSS:\t  120000 kB\n"
	n, err := parseHWM([]byte(status))
	if err != nil || n != 133120*1024 {
		t.Errorf("parseHWM: %d, %v; want %d", n, err, 133120*1024)
	}
	if _, err := parseHWM([]byte("Name:\tpairgate\n")); err == nil {
		t.Error("parseHWM without VmHWM: no error")
	}
}
