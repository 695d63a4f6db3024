package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// Page is what every page template receives: the part's own data under .Data,
// plus what the layout needs.
type Page struct {
	Title  string
	Active string // slug of the part, for the navigation
	Parts  []Part
	Data   any
}

var (
	pageCacheMu sync.Mutex
	pageCache   = map[string]*template.Template{}
)

// funcs are available to every template.
var funcs = template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.2f%%", f*100) },
	"money": func(f float64) string {
		return fmt.Sprintf("%.2f", f)
	},
	"safeHTML": func(s string) template.HTML { return template.HTML(s) },
	"paysOff":  paysOff,
	// pctp shows an optional fraction as a percentage, "-" when absent.
	"pctp": func(f *float64) string {
		if f == nil {
			return "-"
		}
		return fmt.Sprintf("%.4f%%", *f*100)
	},
}

// pageTemplate parses layout.html with one page file (templates/NAME), once.
func pageTemplate(name string) (*template.Template, error) {
	pageCacheMu.Lock()
	defer pageCacheMu.Unlock()
	if t, ok := pageCache[name]; ok {
		return t, nil
	}
	t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name)
	if err != nil {
		return nil, err
	}
	pageCache[name] = t
	return t, nil
}

// Render writes a full page: layout.html around templates/NAME, which must
// define "content" (and may define "head" for extra tags).
func (s *Server) Render(w http.ResponseWriter, name string, p Page) {
	t, err := pageTemplate(name)
	if err != nil {
		s.Log.Error("template", "name", name, "err", err)
		http.Error(w, "template error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	p.Parts = Parts()
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		s.Log.Error("render", "name", name, "err", err)
		http.Error(w, "render error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.Render(w, "home.html", Page{Title: "srekit"})
}
