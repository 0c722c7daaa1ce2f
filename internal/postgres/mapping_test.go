package postgres

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneMappingPerTable checks that each domain type read from a table is
// built, field by field, in one place only: the model method of that table's
// row type. A second hand-written mapping (such as a hot path scanning
// columns straight into the domain type) drifts when a column is added.
func TestOneMappingPerTable(t *testing.T) {
	mappers := map[string]string{ // domain type -> the only function allowed to build it
		"models.Account":      "accountRow.model",
		"openbanking.Consent": "consentRow.model",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			where := fn.Name.Name
			if fn.Recv != nil && len(fn.Recv.List) == 1 {
				recv := fn.Recv.List[0].Type
				if st, ok := recv.(*ast.StarExpr); ok {
					recv = st.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					where = id.Name + "." + where
				}
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok || len(cl.Elts) == 0 {
					return true
				}
				sel, ok := cl.Type.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				typ := pkg.Name + "." + sel.Sel.Name
				if want, ok := mappers[typ]; ok && where != want {
					t.Errorf("%s: %s builds a %s by hand; map the row with %s", fset.Position(cl.Pos()), where, typ, want)
				}
				return true
			})
		}
	}
}
