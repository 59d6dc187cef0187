// Package kubernetes holds manifests that run `regoguard serve` as a sidecar;
// its tests check that they parse, that they are wired together, and that the
// sidecar starts and decides with exactly the arguments and environment they
// give it.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// object is the part of a Kubernetes object (or a kustomization) that the
// tests look at.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct{ Name string }
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"`
	Spec       struct {
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe        `yaml:"readinessProbe"`
	LivenessProbe  *probe        `yaml:"livenessProbe"`
	VolumeMounts   []volumeMount `yaml:"volumeMounts"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// manifests is every object of every YAML file here, by kind and name.
type manifests map[string]object

func (m manifests) get(t *testing.T, kind, name string) object {
	t.Helper()
	o, ok := m[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s named %q in the manifests", kind, name)
	}
	return o
}

// load parses every document of every .yaml file in the directory.
func load(t *testing.T) (manifests, []string) {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 1; ; i++ {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Fatalf("%s, document %d: no apiVersion or kind", f, i)
			}
			if o.Kind != "Kustomization" && o.Metadata.Name == "" {
				t.Fatalf("%s, document %d: a %s without a name", f, i, o.Kind)
			}
			m[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return m, files
}

// findContainer returns the container named name in a pod spec.
func findContainer(t *testing.T, cs []container, name string) container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return container{}
}

// flags parses --name=value arguments (after the subcommand).
func flags(t *testing.T, args []string) map[string]string {
	t.Helper()
	f := map[string]string{}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Fatalf("argument %q is not --name=value", a)
		}
		f[name] = value
	}
	return f
}

// containerPort resolves a probe's or service's port (a number or a port
// name) in c.
func containerPort(t *testing.T, c container, port any) int {
	t.Helper()
	switch p := port.(type) {
	case int:
		return p
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	t.Fatalf("container %s has no port %v", c.Name, port)
	return 0
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	i := strings.LastIndex(hostport, ":")
	p, err := strconv.Atoi(hostport[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("%q has no port", hostport)
	}
	return p
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m, files := load(t)
	k := m["Kustomization/"]
	want := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == "kustomization.yaml" })
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, want %v", got, want)
	}
}

// The sidecar's secret, configuration, probes, ports and bundle URL all
// point at something that exists, with the names regoguard reads.
func TestSidecarWiring(t *testing.T) {
	m, _ := load(t)
	dep := m.get(t, "Deployment", "notes")
	pod := dep.Spec.Template.Spec
	rg := findContainer(t, pod.Containers, "regoguard")
	if len(rg.Args) == 0 || rg.Args[0] != "serve" {
		t.Fatalf("regoguard args %v, want serve first", rg.Args)
	}
	f := flags(t, rg.Args)

	t.Run("OIDC client secret from a Secret", func(t *testing.T) {
		for _, e := range rg.Env {
			if e.Name != "OIDC_CLIENT_SECRET" && e.Name != "REGOGUARD_SESSION_KEY" {
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("%s is not taken from a Secret", e.Name)
			}
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := m.get(t, "Secret", ref.Name).StringData[ref.Key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		}
	})
	t.Run("APP_URI and OIDC settings from a ConfigMap", func(t *testing.T) {
		if len(rg.EnvFrom) != 1 || rg.EnvFrom[0].ConfigMapRef == nil {
			t.Fatal("no envFrom configMapRef")
		}
		cm := m.get(t, "ConfigMap", rg.EnvFrom[0].ConfigMapRef.Name)
		for _, name := range []string{"APP_URI", "OIDC_WELL_KNOWN", "OIDC_CLIENT_ID"} {
			if cm.Data[name] == "" {
				t.Errorf("ConfigMap %s has no %s", cm.Metadata.Name, name)
			}
		}
	})
	t.Run("probes on the admin listener", func(t *testing.T) {
		admin := portOf(t, f["admin-listen"])
		for path, p := range map[string]*probe{"/readyz": rg.ReadinessProbe, "/healthz": rg.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || containerPort(t, rg, p.HTTPGet.Port) != admin {
				t.Errorf("probe for %s is not an HTTP GET on the admin port %d", path, admin)
			}
		}
	})
	t.Run("the Service reaches the sidecar, not the app", func(t *testing.T) {
		svc := m.get(t, "Service", "notes")
		for k, v := range svc.Spec.Selector {
			if dep.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Service selector %s=%v does not match the pod", k, v)
			}
		}
		if len(svc.Spec.Ports) != 1 || containerPort(t, rg, svc.Spec.Ports[0].TargetPort) != portOf(t, f["listen"]) {
			t.Errorf("Service ports %+v do not lead to --listen %s", svc.Spec.Ports, f["listen"])
		}
	})
	t.Run("the upstream is the app on loopback", func(t *testing.T) {
		app := findContainer(t, pod.Containers, "app")
		u, err := url.Parse(f["upstream"])
		if err != nil || u.Hostname() != "127.0.0.1" {
			t.Fatalf("--upstream %q is not on loopback", f["upstream"])
		}
		if len(app.Env) == 0 || app.Env[0].Value != u.Host {
			t.Errorf("the app listens on %+v, --upstream is %s", app.Env, u.Host)
		}
	})
	t.Run("the bundle persist directory is a volume", func(t *testing.T) {
		dir := f["bundle-persist-dir"]
		if !slices.ContainsFunc(rg.VolumeMounts, func(v volumeMount) bool { return v.MountPath == dir }) {
			t.Errorf("--bundle-persist-dir %s is not mounted", dir)
		}
	})
	t.Run("the bundle URL is served by the bundle server", func(t *testing.T) {
		checkBundleURL(t, m, f["bundle"])
	})
}

// checkBundleURL follows the bundle URL to the Service, to nginx, to the
// volume the init container writes the bundle to.
func checkBundleURL(t *testing.T, m manifests, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	svc := m.get(t, "Service", u.Hostname())
	if len(svc.Spec.Ports) != 1 || (u.Port() == "" && svc.Spec.Ports[0].Port != 80) {
		t.Fatalf("Service %s does not serve %s", svc.Metadata.Name, raw)
	}
	pod := m.get(t, "Deployment", u.Hostname()).Spec.Template.Spec
	nginx := findContainer(t, pod.Containers, "nginx")
	if containerPort(t, nginx, svc.Spec.Ports[0].TargetPort) == 0 {
		t.Fatal("Service targets no nginx port")
	}
	const docroot = "/usr/share/nginx/html"
	build := findContainer(t, pod.InitContainers, "build")
	var output string
	for _, a := range build.Args {
		if v, ok := strings.CutPrefix(a, "--output="); ok {
			output = v
		}
	}
	mountOf := func(c container, dir string) string {
		for _, v := range c.VolumeMounts {
			if v.MountPath == dir {
				return v.Name
			}
		}
		return ""
	}
	served := path.Join(docroot, path.Dir(u.Path))
	if vol := mountOf(nginx, served); vol == "" || vol != mountOf(build, path.Dir(output)) || path.Base(output) != path.Base(u.Path) {
		t.Fatalf("%s: nginx serves %s, the bundle is built to %s, on different volumes or names", raw, served, output)
	}
}
