package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// token is organization id's SCIM bearer token: fixed per id, so the
// provisioner needs only the id.
func token(id string) string { return "bench-token-" + id + "-0123456789abcdef" }

// provision creates users users in each of n organizations' directories
// through SCIM Bulk, four organizations at a time.
func provision(_ string, base string, n, users int) error {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	ids := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				errs <- bulkUsers(client, base, id, users)
			}
		})
	}
	for i := range n {
		ids <- fmt.Sprintf("org%04d", i)
	}
	close(ids)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func bulkUsers(client *http.Client, base, id string, users int) error {
	ops := make([]map[string]any, 0, users)
	for u := range users {
		email := fmt.Sprintf("user%03d@%s.example", u, id)
		ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprintf("u%d", u),
			"data": map[string]any{
				"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": email, "active": true,
				"emails": []any{map[string]any{"value": email, "type": "work", "primary": true}},
			}})
	}
	body, err := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/scim/v2/"+id+"/Bulk", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token(id))
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || bytes.Count(b, []byte(`"status":"201"`)) != users {
		return fmt.Errorf("bulk %s: status %d, want %d created: %.300s", id, resp.StatusCode, users, b)
	}
	return nil
}
