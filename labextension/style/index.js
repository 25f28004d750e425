import './base.css';
import './branchmenu.css';
