package nfsrpc

import "github.com/luksmount/luksmount/guest/xdr"

const procRemove = 12

// Remove deletes the file name in dir.
func (c *Client) Remove(dir []byte, name string) error {
	var a xdr.Writer
	a.Opaque(dir)
	a.String(name)
	_, err := c.nfs("REMOVE", procRemove, a.B)
	return err
}
