package h

import _ "example.com/bad/guest/t" // broken rule: host/ never imports guest/, tests included
